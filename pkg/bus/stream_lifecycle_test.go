package bus

import (
	"errors"
	"testing"

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
