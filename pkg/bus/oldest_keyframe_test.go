package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/internal/natstest"
)

// TestOldestKeyframe: the store time of the first keyframe still held,
// ErrNotFound without the stream or without a keyframe; after the oldest
// keyframe is purged, the next one.
func TestOldestKeyframe(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	if _, err := OldestKeyframe(ctx, js, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("without stream: %v, want ErrNotFound", err)
	}
	if _, err := OldestKeyframe(ctx, js, "a.b"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v, want ErrInvalidName", err)
	}
	p := newPublisher(t, ctx, nc, "dvr", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, audioFrame(0, []byte{0xfc})); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	if _, err := OldestKeyframe(ctx, js, "dvr"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("without keyframe: %v, want ErrNotFound", err)
	}
	for i := range 3 {
		if err := p.Publish(ctx, videoFrame(int64(i)*90000, true, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, videoFrame(int64(i)*90000+3600, false, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })

	subj, _ := SubjectsFor("dvr")
	st, err := js.Stream(ctx, subj.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var keys []time.Time
	for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil && m.Subject == subj.Key {
			keys = append(keys, m.Time)
		}
	}
	if len(keys) != 3 {
		t.Fatalf("%d keyframes stored, want 3", len(keys))
	}
	got, err := OldestKeyframe(ctx, js, "dvr")
	if err != nil || !got.Equal(keys[0]) {
		t.Fatalf("OldestKeyframe = %v, %v; want %v", got, err, keys[0])
	}

	// Purge everything before the second keyframe: the oldest is then the
	// second.
	var secondSeq uint64
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq, n := uint64(1), 0; seq <= info.State.LastSeq && secondSeq == 0; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil && m.Subject == subj.Key {
			if n++; n == 2 {
				secondSeq = seq
			}
		}
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(secondSeq)); err != nil {
		t.Fatal(err)
	}
	got, err = OldestKeyframe(ctx, js, "dvr")
	if err != nil || !got.Equal(keys[1]) {
		t.Fatalf("after the purge OldestKeyframe = %v, %v; want %v", got, err, keys[1])
	}
}
