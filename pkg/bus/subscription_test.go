package bus

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
)

func TestSubscribeFromLatestKeyframe(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	av := avFrames(t)
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	p := newPublisher(t, ctx, nc, "gop", PublisherConfig{})
	carried := publishAV(t, ctx, p, av)
	// Wait until everything is stored, so the latest keyframe is final.
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })

	seq, err := LatestKeyframe(ctx, js, "gop")
	if err != nil {
		t.Fatal(err)
	}
	lastKey := -1
	for i, f := range carried {
		if f.Key {
			lastKey = i
		}
	}
	c := newCollector()
	subscribe(t, ctx, nc, "gop", SubscribeOptions{}, c)
	want := carried[lastKey:]
	msgs := c.waitFor(t, ctx, "the last GOP", func(m []Message) bool { return countFrames(m) >= len(want) })
	if !msgs[0].IsFrame() || !msgs[0].Frame.Key || msgs[0].Seq != seq {
		t.Fatalf("first message: seq %d frame %v key %v, want the keyframe at seq %d",
			msgs[0].Seq, msgs[0].IsFrame(), msgs[0].Frame.Key, seq)
	}
	for i, m := range msgs[:len(want)] {
		if !m.IsFrame() || !bytes.Equal(m.Frame.Data, want[i].Data) || m.Frame.PTS != want[i].PTS {
			t.Fatalf("message %d (seq %d) is not frame %d of the last GOP", i, m.Seq, i)
		}
	}

	// New frames keep coming, in order, after the replay.
	if err := p.Publish(ctx, av.Frames[0]); err != nil {
		t.Fatal(err)
	}
	msgs = c.waitFor(t, ctx, "a live frame", func(m []Message) bool { return countFrames(m) > len(want) })
	if got := msgs[len(msgs)-1]; !bytes.Equal(got.Frame.Data, av.Frames[0].Data) {
		t.Fatalf("live frame differs (seq %d)", got.Seq)
	}
}

func TestSubscribeWithoutKeyframeGetsNewMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	p := newPublisher(t, ctx, nc, "nokey", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, audioFrame(0, []byte{0xfc, 1})); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	c := newCollector()
	subscribe(t, ctx, nc, "nokey", SubscribeOptions{}, c)
	before := time.Now().Round(0) // wall clock, as the server stamps
	if err := p.Publish(ctx, audioFrame(1800, []byte{0xfc, 2})); err != nil {
		t.Fatal(err)
	}
	msgs := c.waitFor(t, ctx, "the new frame", func(m []Message) bool { return len(m) >= 1 })
	after := time.Now().Round(0)
	if len(msgs) != 1 || msgs[0].Seq != 3 || msgs[0].Frame.PTS != 1800 || msgs[0].Frame.PID != 257 {
		t.Fatalf("got %+v, want only the frame published after Subscribe (seq 3)", msgs)
	}
	// The store time comes from the JetStream metadata (the server runs on
	// this host's clock).
	if pub := msgs[0].Published; pub.Before(before) || pub.After(after) {
		t.Fatalf("Published %s, want between %s and %s", pub, before, after)
	}
}

func TestSubscribeWaitsForStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)

	c := newCollector()
	type result struct {
		s   *Subscription
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := Subscribe(ctx, nc, "later", SubscribeOptions{}, c.handle)
		res <- result{s, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("Subscribe returned before the stream existed: %v", r.err)
	default:
	}
	p := newPublisher(t, ctx, nc, "later", PublisherConfig{})
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatal("Subscribe did not notice the stream")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.s.Close()
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, videoFrame(0, true, []byte{0, 0, 0, 1, 0x65})); err != nil {
		t.Fatal(err)
	}
	msgs := c.waitFor(t, ctx, "keyframe", func(m []Message) bool { return countFrames(m) == 1 })
	// The announcement comes first: seq 1, or its copy before the keyframe at
	// seq 2 when that copy's rollup purged seq 1 before it was delivered.
	if msgs[0].Tracks == nil || msgs[0].Seq > 2 {
		t.Fatalf("first message %+v, want the announcement (seq 1, or its copy at seq 2)", msgs[0])
	}

	// A context that ends bounds the wait.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := Subscribe(cctx, nc, "never", SubscribeOptions{}, c.handle); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe to a missing stream: %v, want DeadlineExceeded", err)
	}
}

func TestSubscribeSurvivesBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := natstest.Embedded(t, embedded.Config{DataDir: dir})
	url := srv.ClientURL()
	_, portStr, _ := net.SplitHostPort(url[len("nats://"):])
	port, _ := strconv.Atoi(portStr)

	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
	pubConn, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	subConn, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer subConn.Close()

	p := newPublisher(t, ctx, pubConn, "rs", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := p.Publish(ctx, audioFrame(int64(i)*1800, []byte{0xfc, byte(i)})); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		pollUntil(t, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	}
	publish(0, 10)
	c := newCollector()
	subscribe(t, ctx, subConn, "rs", SubscribeOptions{FromSeq: 1, Logger: testLogger(t)}, c)
	c.waitFor(t, ctx, "first 10 frames", func(m []Message) bool { return countFrames(m) == 10 })

	reconnected := subConn.StatusChanged(nats.CONNECTED)
	defer subConn.RemoveStatusListener(reconnected)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Embedded(t, embedded.Config{Port: port, DataDir: dir})
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("subscriber did not reconnect")
	}
	pollUntil(t, ctx, "publisher reconnect", pubConn.IsConnected)
	publish(10, 20)
	msgs := c.waitFor(t, ctx, "20 frames", func(m []Message) bool { return countFrames(m) >= 20 })
	var n int
	for _, m := range msgs {
		if !m.IsFrame() {
			continue
		}
		if m.Frame.PTS != int64(n)*1800 {
			t.Fatalf("frame %d (seq %d) has pts %d: skipped or repeated across the restart", n, m.Seq, m.Frame.PTS)
		}
		n++
	}
	if n != 20 {
		t.Fatalf("got %d frames, want 20", n)
	}
}

func TestSubscribeStreamRecreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	p1 := newPublisher(t, ctx, nc, "re", PublisherConfig{})
	if err := p1.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := p1.Publish(ctx, audioFrame(int64(i), []byte{1, byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	c := newCollector()
	s := subscribe(t, ctx, nc, "re", SubscribeOptions{FromSeq: 1, Logger: testLogger(t)}, c)
	c.waitFor(t, ctx, "first stream", func(m []Message) bool { return countFrames(m) == 10 })
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, "MEDIA_re"); err != nil {
		t.Fatal(err)
	}
	p2 := newPublisher(t, ctx, nc, "re", PublisherConfig{})
	if err := p2.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p2.Publish(ctx, audioFrame(int64(100+i), []byte{2, byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	msgs := c.waitFor(t, ctx, "recreated stream", func(m []Message) bool { return countFrames(m) == 13 })
	var after []Message
	for _, m := range msgs {
		if m.Epoch == p2.Epoch() {
			after = append(after, m)
		}
	}
	if len(after) != 4 || after[0].Tracks == nil || after[0].Seq != 1 || after[1].Seq != 2 || after[3].Frame.PTS != 102 {
		t.Fatalf("after recreation got %d messages, want the announcement at seq 1 then 3 frames", len(after))
	}
	if s.Err() != nil {
		t.Fatalf("Err() = %v while running", s.Err())
	}
}

func TestSubscriptionEndsWithConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	newPublisher(t, ctx, natstest.Connect(t, srv), "cl", PublisherConfig{})
	s, err := Subscribe(ctx, nc, "cl", SubscribeOptions{}, func(Message) {})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("subscription outlived its connection")
	}
	if !errors.Is(s.Err(), nats.ErrConnectionClosed) {
		t.Fatalf("Err() = %v, want ErrConnectionClosed", s.Err())
	}
	s.Close()
	s.Close()
}

func TestResumeAt(t *testing.T) {
	for _, tc := range []struct{ start, key, ann, want uint64 }{
		{100, 0, 0, 100},     // no keyframe: the backlog, in order
		{100, 90, 89, 100},   // the latest keyframe is not past start
		{100, 100, 99, 100},  // start is the keyframe
		{100, 150, 149, 149}, // skip to the announcement before the keyframe
		{100, 150, 120, 120}, // announcement earlier in the backlog: from there
		{100, 150, 60, 150},  // announcement before start: the keyframe
		{100, 150, 0, 150},   // no announcement
	} {
		if got := resumeAt(tc.start, tc.key, tc.ann); got != tc.want {
			t.Errorf("resumeAt(start %d, key %d, ann %d) = %d, want %d", tc.start, tc.key, tc.ann, got, tc.want)
		}
	}
}

// TestSubscriptionSkipsStaleBacklog: a subscription that resumes (here
// after a reconnect) more than StaleBacklog behind the stream, with a
// keyframe stored since, resumes at that keyframe (the announcement before
// it) instead of delivering the backlog of stale frames in one burst.
func TestSubscriptionSkipsStaleBacklog(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	pubConn := natstest.Connect(t, srv)
	subConn := natstest.Connect(t, srv)
	p := newPublisher(t, ctx, pubConn, "stale", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	// A live source: 30 fps, a keyframe every 10 frames.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			if err := p.Publish(ctx, videoFrame(i*3000, i%10 == 0, []byte{byte(i)})); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-published }()

	// The subscriber's handler blocks on the first keyframe it gets.
	gate := make(chan struct{})
	c := newCollector()
	var blocked atomic.Bool
	s, err := Subscribe(ctx, subConn, "stale", SubscribeOptions{}, func(m Message) {
		c.handle(m)
		if m.IsFrame() && m.Frame.Key && blocked.CompareAndSwap(false, true) {
			<-gate
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := c.waitFor(t, ctx, "the first keyframe", func(m []Message) bool { return blocked.Load() })
	held := first[len(first)-1]

	// Wait until more than StaleBacklog of frames, keyframes included, is
	// stored after the held one, then reconnect the subscriber's connection
	// and let its handler return: it resumes.
	js := newJS(t, pubConn)
	pollUntil(t, ctx, "a stale backlog", func() bool {
		info, err := js.Stream(ctx, "MEDIA_stale")
		return err == nil && info.CachedInfo().State.LastTime.Sub(held.Published) > StaleBacklog+300*time.Millisecond
	})
	key, err := LatestKeyframe(ctx, js, "stale")
	if err != nil || key <= held.Seq+1 {
		t.Fatalf("latest keyframe %d (%v), want one after seq %d", key, err, held.Seq)
	}
	if err := subConn.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "the reconnect", func() bool { return subConn.Stats().Reconnects > 0 && subConn.IsConnected() })
	close(gate)

	// The backlog is skipped: the frames already fetched when the reconnect
	// was noticed may still come (the consumer prefetches a few), then the
	// keyframe at or after key, not the rest of the stale frames.
	msgs := c.waitFor(t, ctx, "the keyframe after the resume", func(m []Message) bool {
		for _, x := range m[len(first):] {
			if x.IsFrame() && x.Seq >= key {
				return true
			}
		}
		return false
	})
	var stale []uint64
	for _, m := range msgs[len(first):] {
		if !m.IsFrame() {
			continue
		}
		if m.Seq >= key {
			if !m.Frame.Key {
				t.Fatalf("resumed at seq %d, a delta; want the keyframe at %d", m.Seq, key)
			}
			break
		}
		stale = append(stale, m.Seq)
	}
	if backlog := key - held.Seq - 1; len(stale) > 5 {
		t.Fatalf("%d of the %d stale messages delivered (%v): the backlog was not skipped", len(stale), backlog, stale)
	}
	t.Logf("held seq %d, resumed at keyframe %d after %d prefetched frames", held.Seq, key, len(stale))
}
