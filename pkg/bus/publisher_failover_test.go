package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestPublisherFailover: JetStream stops answering (as while a stream
// leader is elected; modelled by deleting the stream while a plain
// subscriber keeps interest in its subjects, so that publishes get no
// answer at all). The in-flight window is abandoned after StallTimeout
// instead of AckTimeout, the video is broken, and it is repaired only by a
// keyframe that JetStream acknowledges: a keyframe published while nothing
// answers is lost, and the delta after it is dropped, not stored without
// its reference.
func TestPublisherFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	other := natstest.Connect(t, srv)
	js := newJS(t, other)
	const (
		window = 8
		stall  = 100 * time.Millisecond
	)
	p := newPublisher(t, ctx, nc, "fo", PublisherConfig{MaxInFlight: window, StallTimeout: stall})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	publish := func(f tsframes.Frame) error {
		t.Helper()
		start := time.Now()
		err := p.Publish(ctx, f)
		if took := time.Since(start); took > stall+time.Second {
			t.Fatalf("Publish(pts %d) blocked %v", f.PTS, took)
		}
		return err
	}
	mustPublish := func(f tsframes.Frame) {
		t.Helper()
		if err := publish(f); err != nil {
			t.Fatalf("Publish(pts %d key %v): %v", f.PTS, f.Key, err)
		}
	}
	mustDrop := func(f tsframes.Frame) time.Duration {
		t.Helper()
		start := time.Now()
		if err := publish(f); !errors.Is(err, ErrDropped) {
			t.Fatalf("Publish(pts %d key %v) = %v, want ErrDropped", f.PTS, f.Key, err)
		}
		return time.Since(start)
	}
	acked := func() { pollUntil(t, ctx, "acknowledgements", func() bool { return p.Stats().InFlight == 0 }) }
	mustPublish(videoFrame(0, true, []byte{1}))
	mustPublish(videoFrame(3000, false, []byte{2}))
	acked()

	// Nothing answers.
	if err := js.DeleteStream(ctx, p.Subjects().Stream); err != nil {
		t.Fatal(err)
	}
	mute, err := other.Subscribe(p.Subjects().All, func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(); err != nil {
		t.Fatal(err)
	}
	errsBefore := p.Stats().Errors
	mustPublish(videoFrame(6000, false, []byte{3}))
	for i := range window - 1 {
		mustPublish(audioFrame(int64(i)*1800, []byte{0xfc, byte(i)}))
	}
	// The window is full: this frame waits StallTimeout, is dropped, and
	// the messages in flight are abandoned (counted as errors) at once.
	if took := mustDrop(audioFrame(100*1800, []byte{0xfc})); took < stall-10*time.Millisecond {
		t.Fatalf("dropped after %v, before the stall timeout %v", took, stall)
	}
	if st := p.Stats(); st.InFlight != 0 || st.Errors != errsBefore+window {
		t.Fatalf("after the stall: %+v, want nothing in flight and %d more errors", st, window)
	}
	mustDrop(videoFrame(9000, false, []byte{4}))
	mustPublish(audioFrame(101*1800, []byte{0xfc})) // audio is not held back

	// A keyframe published while nothing answers is lost: the delta after
	// it waits for its acknowledgement, in vain, and is dropped.
	mustPublish(videoFrame(12000, true, []byte{5}))
	if took := mustDrop(videoFrame(15000, false, []byte{6})); took < stall-10*time.Millisecond {
		t.Fatalf("delta dropped after %v, without waiting for its keyframe's acknowledgement", took)
	}
	// Nothing was acknowledged for more than StallTimeout (the delta at
	// 15000 waited that long): this publish also abandons the 3 messages
	// still in flight (the audio packet, the announcement before the
	// keyframe, the keyframe), although the window is not full.
	errsBefore = p.Stats().Errors
	mustDrop(videoFrame(18000, false, []byte{7}))
	if st := p.Stats(); st.InFlight != 0 || st.Errors != errsBefore+3 {
		t.Fatalf("after the second stall: %+v, want the 3 messages in flight abandoned", st)
	}

	// JetStream answers again: the next keyframe, once acknowledged,
	// repairs the video.
	if err := mute.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, StreamConfig{}.jetStreamConfig(p.Subjects())); err != nil {
		t.Fatal(err)
	}
	mustPublish(videoFrame(21000, true, []byte{8}))
	mustPublish(videoFrame(24000, false, []byte{9}))
	mustPublish(videoFrame(27000, false, []byte{10}))

	c := newCollector()
	subscribe(t, ctx, nc, "fo", SubscribeOptions{FromSeq: 1}, c)
	msgs := c.waitFor(t, ctx, "the repaired GOP", func(m []Message) bool { return countFrames(m) >= 3 })
	var got []int64
	for _, m := range msgs {
		if m.IsFrame() && m.Frame.Kind == tsframes.KindVideo {
			got = append(got, m.Frame.PTS)
			if len(got) == 1 && !m.Frame.Key {
				t.Fatalf("the first video frame stored after the failover (pts %d) is not a keyframe", m.Frame.PTS)
			}
		}
	}
	if len(got) != 3 || got[0] != 21000 || got[1] != 24000 || got[2] != 27000 {
		t.Fatalf("video stored after the failover: pts %v, want [21000 24000 27000]", got)
	}
	// Nothing is left waiting for an acknowledgement that cannot come.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Shutdown(cctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestPublisherStallWithoutFullWindow: a stream with few messages never
// fills the in-flight window, yet when JetStream stops answering, the next
// publish after StallTimeout without an acknowledgement abandons what is in
// flight and breaks the video, so no delta is stored after lost frames.
func TestPublisherStallWithoutFullWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	other := natstest.Connect(t, srv)
	js := newJS(t, other)
	const stall = 100 * time.Millisecond
	p := newPublisher(t, ctx, nc, "slow", PublisherConfig{MaxInFlight: 256, StallTimeout: stall})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, videoFrame(0, true, []byte{1})); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "acknowledgement", func() bool { return p.Stats().InFlight == 0 })
	if err := js.DeleteStream(ctx, p.Subjects().Stream); err != nil {
		t.Fatal(err)
	}
	mute, err := other.Subscribe(p.Subjects().All, func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Unsubscribe()
	if err := other.Flush(); err != nil {
		t.Fatal(err)
	}
	errsBefore := p.Stats().Errors
	sent := time.Now()
	for _, pts := range []int64{3000, 6000} {
		if err := p.Publish(ctx, videoFrame(pts, false, []byte{byte(pts / 3000)})); err != nil {
			t.Fatal(err)
		}
	}
	// Past StallTimeout without an acknowledgement (the window of 256 is
	// far from full): the next publish abandons both and the delta waits
	// for a keyframe.
	pollUntil(t, ctx, "the stall timeout to pass", func() bool { return time.Since(sent) > stall })
	if err := p.Publish(ctx, videoFrame(9000, false, []byte{4})); !errors.Is(err, ErrDropped) {
		t.Fatalf("delta after the stall: %v, want ErrDropped", err)
	}
	if st := p.Stats(); st.InFlight != 0 || st.Errors != errsBefore+2 {
		t.Fatalf("after the stall: %+v, want the 2 messages in flight abandoned", st)
	}
}
