package relay

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// event is one output of the demuxer: an announcement or a frame.
type event struct {
	ann   *tsframes.Announcement
	frame *tsframes.Frame
}

type collector struct{ events []event }

func (c *collector) Tracks(a tsframes.Announcement) error {
	c.events = append(c.events, event{ann: &a})
	return nil
}

func (c *collector) Frame(f tsframes.Frame) error {
	c.events = append(c.events, event{frame: &f})
	return nil
}

// readFixture demuxes testdata/name.
func readFixture(t testing.TB, name string) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var c collector
	if err := tsframes.NewDemuxer(bytes.NewReader(tstest.Read(t, name)), tsframes.Options{}).Run(ctx, &c); err != nil {
		t.Fatalf("demux %s: %v", name, err)
	}
	return c.events
}

// messages turns fixture events into the bus messages of stream name in
// epoch.
func messages(name string, epoch uint64, events []event) []bus.Message {
	out := make([]bus.Message, 0, len(events))
	for i, e := range events {
		m := bus.Message{Seq: uint64(i + 1), Epoch: epoch}
		if e.ann != nil {
			a := bus.NewAnnouncement(name, epoch, *e.ann)
			m.Tracks = &a
		} else {
			m.Frame = *e.frame
		}
		out = append(out, m)
	}
	return out
}

// firstAnnouncement returns the first announcement of msgs.
func firstAnnouncement(t testing.TB, msgs []bus.Message) bus.Announcement {
	t.Helper()
	for _, m := range msgs {
		if m.Tracks != nil {
			return *m.Tracks
		}
	}
	t.Fatal("no announcement")
	return bus.Announcement{}
}
