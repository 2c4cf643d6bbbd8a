package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/internal/natstest"
)

func TestLatestKeyframeNotFound(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	// No stream.
	if _, err := LatestKeyframe(ctx, js, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestKeyframe without stream: %v, want ErrNotFound", err)
	}
	if _, err := LatestAnnouncement(ctx, js, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestAnnouncement without stream: %v, want ErrNotFound", err)
	}
	// Stream without keyframe.
	p := newPublisher(t, ctx, nc, "audio", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, audioFrame(0, []byte{0xfc})); err != nil {
		t.Fatal(err)
	}
	if _, err := LatestKeyframe(ctx, js, "audio"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestKeyframe without keyframe: %v, want ErrNotFound", err)
	}
	m, err := LatestAnnouncement(ctx, js, "audio")
	if err != nil || m.Seq != 1 || m.Tracks == nil || m.Tracks.Epoch != p.Epoch() {
		t.Fatalf("LatestAnnouncement = %+v, %v", m, err)
	}
	if err := p.Publish(ctx, videoFrame(0, true, []byte{1})); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	// seq 2 audio, seq 3 announcement (before the keyframe), seq 4 keyframe.
	if seq, err := LatestKeyframe(ctx, js, "audio"); err != nil || seq != 4 {
		t.Fatalf("LatestKeyframe = %d, %v; want 4", seq, err)
	}
}

func TestAPIPrefix(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	js, _ := jetstream.New(nc)
	if got := apiPrefix(js); got != "$JS.API." {
		t.Errorf("default prefix %q", got)
	}
	js, _ = jetstream.NewWithDomain(nc, "hub")
	if got := apiPrefix(js); got != "$JS.hub.API." {
		t.Errorf("domain prefix %q", got)
	}
	js, _ = jetstream.NewWithAPIPrefix(nc, "$JS.acc.API")
	if got := apiPrefix(js); got != "$JS.acc.API." {
		t.Errorf("custom prefix %q", got)
	}
}
