package demo

import (
	"context"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Run publishes the clip on a real bus: the stream goes live in the catalog,
// its first frames are the clip's first keyframe and what follows, and when
// ctx ends Run returns nil and the stream is marked ended.
func TestRunPublishesOnTheBus(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	w, err := bus.WatchCatalog(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	want, err := loadClip(ctx, Sample())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(runCtx, nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: "memory"}}, nil)
	}()

	entry, err := w.Wait(ctx, StreamName)
	if err != nil {
		t.Fatalf("waiting for the demo to go live: %v", err)
	}
	if entry.Tracks.Video == 0 || entry.Tracks.Audio == 0 {
		t.Fatalf("demo announcement %+v, want a video and an audio track", entry.Tracks)
	}

	got := make(chan tsframes.Frame, 64)
	sub, err := bus.Subscribe(ctx, nc, StreamName, bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if m.Tracks == nil && m.Frame.Kind == tsframes.KindVideo {
			select {
			case got <- m.Frame:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var video []tsframes.Frame
	for _, f := range want.frames {
		if f.Kind == tsframes.KindVideo {
			video = append(video, f)
		}
	}
	for i := 0; i < 5; i++ {
		select {
		case f := <-got:
			if string(f.Data) != string(video[i].Data) || f.PTS != video[i].PTS || f.Key != video[i].Key {
				t.Fatalf("video frame %d: pts %d key %v len %d, want pts %d key %v len %d",
					i, f.PTS, f.Key, len(f.Data), video[i].PTS, video[i].Key, len(video[i].Data))
			}
		case <-ctx.Done():
			t.Fatalf("only %d video frames arrived", i)
		}
	}
	sub.Close()

	stopRun()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run returned %v after cancel, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after cancel")
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	for {
		if e, ok := w.Get(StreamName); ok && e.State == bus.StateEnded {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("the demo stream was not marked ended")
		}
	}
}
