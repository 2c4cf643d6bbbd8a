package export

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestExportRelativeRangeOfARealTimeIngest publishes av.ts (6 s) in real
// time, as an encoder would, then exports -4s to -2s: about two seconds
// from a keyframe, a run of the bus's frames.
func TestExportRelativeRangeOfARealTimeIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 6 s in real time")
	}
	nc := natstest.EmbeddedConn(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	d := tstest.Demux(t, tstest.Read(t, "av.ts"))
	pub, err := bus.NewPublisher(ctx, nc, "live", bus.PublisherConfig{Stream: bus.StreamConfig{MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Announce(ctx, d.Announcements[0]); err != nil {
		t.Fatal(err)
	}
	began, first := time.Now(), d.Frames[0].DTS
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, f := range d.Frames {
		// Pace: each frame at its decode time after the first.
		due := began.Add(time.Duration(f.DTS-first) * time.Second / 90000)
		timer.Reset(time.Until(due))
		select {
		case <-timer.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if err := pub.Publish(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_, srv := exportServer(t, nc, Config{}, nil)
	resp, body := get(t, srv.URL+"/export/live.ts?from=-4s&to=-2s", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := tstest.Demux(t, body)
	video := got.Kind(tsframes.KindVideo)
	if !got.Frames[0].Key {
		t.Error("the export does not start with a keyframe")
	}
	// 2 s, plus up to one GOP (1 s) before from, at 30 fps; a loaded
	// machine may store frames late, so allow some slack.
	if len(video) < 50 || len(video) > 100 {
		t.Errorf("%d video frames, want about 60 to 90", len(video))
	}
	ref := d.Kind(tsframes.KindVideo)
	at := -1
	for i, f := range ref {
		if f.PTS == video[0].PTS {
			at = i
		}
	}
	if at < 0 || at+len(video) > len(ref) {
		t.Fatalf("the export's first frame (pts %d) is not one of the fixture's", video[0].PTS)
	}
	for i, f := range video {
		if !bytes.Equal(f.Data, ref[at+i].Data) {
			t.Fatalf("video frame %d is not the fixture's frame %d", i, at+i)
		}
	}
}
