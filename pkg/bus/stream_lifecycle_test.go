package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
)

func TestRemoveStreamSparesAStreamThatWentLiveAgain(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	cat, err := OpenCatalog(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	first := newPublisher(t, t.Context(), nc, "cam", PublisherConfig{})
	if err := first.Announce(t.Context(), h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ended, err := cat.Lookup(t.Context(), "cam")
	if err != nil || ended.State != StateEnded {
		t.Fatalf("Lookup after the end: %+v, %v", ended, err)
	}
	if ms, err := MediaStreams(t.Context(), js); err != nil || len(ms) != 1 || ms[0].Name != "cam" || ms[0].Created.IsZero() || ms[0].LastMessage.IsZero() {
		t.Fatalf("MediaStreams = %+v, %v", ms, err)
	}

	// It goes live again between the sweep's look-up and the removal.
	second := newPublisher(t, t.Context(), nc, "cam", PublisherConfig{})
	if err := second.Announce(t.Context(), h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStream(t.Context(), js, cat, "cam", &ended); !errors.Is(err, ErrChanged) {
		t.Fatalf("RemoveStream of an entry that went live again: %v, want ErrChanged", err)
	}
	if e, err := cat.Get(t.Context(), "cam"); err != nil || e.State != StateLive {
		t.Fatalf("entry after the refused removal: %+v, %v; want live", e, err)
	}
	if _, err := LatestAnnouncement(t.Context(), js, "cam"); err != nil {
		t.Fatalf("announcement after the refused removal: %v", err)
	}

	if err := second.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, err := cat.Lookup(t.Context(), "cam")
	if err != nil {
		t.Fatal(err)
	}
	if err := RemoveStream(t.Context(), js, cat, "cam", &rec); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Lookup(t.Context(), "cam"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry after removal: %v, want ErrNotFound", err)
	}
	if ms, err := MediaStreams(t.Context(), js); err != nil || len(ms) != 0 {
		t.Fatalf("MediaStreams after removal = %+v, %v", ms, err)
	}
	// Removing what is gone is not an error.
	if err := RemoveStream(t.Context(), js, cat, "cam", nil); err != nil {
		t.Fatalf("removing a removed stream: %v", err)
	}
	if err := RemoveStream(t.Context(), js, cat, "a.b", nil); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("RemoveStream(a.b) = %v, want ErrInvalidName", err)
	}
}

// A publisher whose stream was removed after it started (its previous
// epoch ended long enough ago) creates it again when it announces.
func TestAnnounceCreatesARemovedStreamAgain(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	cat, err := OpenCatalog(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, t.Context(), nc, "cam", PublisherConfig{})
	if err := RemoveStream(t.Context(), js, cat, "cam", nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Announce(t.Context(), h264Opus); err != nil {
		t.Fatalf("Announce after the stream was removed: %v", err)
	}
	if _, err := LatestAnnouncement(t.Context(), js, "cam"); err != nil {
		t.Fatalf("announcement: %v", err)
	}
}

// TestPublishCreatesARemovedStreamAgain removes the media stream under a
// publication that is running (as `nats stream rm` would): the publication
// carries on, creates the stream again within about a second of frames, with
// its announcement, and its next keyframes are stored.
func TestPublishCreatesARemovedStreamAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	av := avFrames(t)
	p := newPublisher(t, ctx, nc, "cam", PublisherConfig{})
	publishAV(t, ctx, p, av)
	if _, err := LatestKeyframe(ctx, js, "cam"); err != nil {
		t.Fatalf("keyframe before the removal: %v", err)
	}
	if err := js.DeleteStream(ctx, "MEDIA_cam"); err != nil {
		t.Fatal(err)
	}
	// Publishing goes on, paced (the publisher retries at most once per
	// recreateInterval), until the stream holds a keyframe again.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	published := 0
	for {
		if _, err := LatestKeyframe(ctx, js, "cam"); err == nil {
			break
		}
		f := av.Frames[published%len(av.Frames)]
		if err := p.Publish(ctx, f); err != nil && !errors.Is(err, ErrDropped) {
			t.Fatalf("Publish after the removal: %v", err)
		}
		published++
		select {
		case <-ctx.Done():
			t.Fatalf("no keyframe stored again after %d frames: %v", published, ctx.Err())
		case <-tick.C:
		}
	}
	ann, err := LatestAnnouncement(ctx, js, "cam")
	if err != nil {
		t.Fatalf("announcement after the stream was created again: %v", err)
	}
	key, err := LatestKeyframe(ctx, js, "cam")
	if err != nil || ann.Seq > key {
		t.Fatalf("announcement at %d, keyframe at %d (%v): want the announcement first", ann.Seq, key, err)
	}
	t.Logf("stream created again after %d frames", published)
}
