package bus

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestTrackPublisherJoinsTheEpoch: the frames of a derived track go into
// the publication's stream with its epoch, on the audio subject, and a
// subscriber reads them with the publication's own (the source audio
// published under the derived PID is told apart by its codec).
func TestTrackPublisherJoinsTheEpoch(t *testing.T) {
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const epoch = 42
	pub, err := NewPublisher(ctx, nc, "derived", PublisherConfig{Epoch: epoch, Stream: StreamConfig{Storage: StorageMemory}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	aac := tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC}
	opus := tsframes.Track{PID: 7936, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, DerivedFrom: 257}
	if err := pub.Announce(ctx, tsframes.Announcement{Tracks: []tsframes.Track{aac, opus}}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, tsframes.Frame{PID: 7936, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, PTS: 1000, Data: []byte("adts")}); err != nil {
		t.Fatal(err)
	}
	tp, err := NewTrackPublisher(nc, "derived", epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Publish(tsframes.Frame{PID: 7936, Kind: tsframes.KindData}); err == nil {
		t.Fatal("data accepted")
	}
	if err := tp.Publish(tsframes.Frame{PID: 7936, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, PTS: 1000, Duration: 1800, Data: []byte{0xfc, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	tp.Close()
	if s := tp.Stats(); s.Frames != 1 || s.Dropped != 0 || s.Errors != 0 {
		t.Fatalf("stats %+v", s)
	}

	got := make(chan Message, 8)
	sub, err := Subscribe(ctx, nc, "derived", SubscribeOptions{FromSeq: 1}, func(m Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var frames []Message
	for len(frames) < 2 {
		select {
		case m := <-got:
			if m.Tracks != nil {
				if m.Tracks.Audio != 7936 {
					t.Fatalf("announcement's audio %d, want the derived track", m.Tracks.Audio)
				}
				continue
			}
			frames = append(frames, m)
		case <-ctx.Done():
			t.Fatal(errors.Join(ctx.Err(), errors.New("frames not read back")))
		}
	}
	for i, want := range []struct {
		codec tsframes.Codec
		data  []byte
	}{{tsframes.CodecAAC, []byte("adts")}, {tsframes.CodecOpus, []byte{0xfc, 1, 2}}} {
		f := frames[i]
		if f.Epoch != epoch || f.Frame.Codec != want.codec || f.Frame.PID != 7936 || f.Frame.PTS != 1000 || !bytes.Equal(f.Frame.Data, want.data) {
			t.Fatalf("frame %d: epoch %d, %+v", i, f.Epoch, f.Frame)
		}
	}
	if frames[1].Frame.Duration != 1800 {
		t.Fatalf("Opus duration %d", frames[1].Frame.Duration)
	}
}
