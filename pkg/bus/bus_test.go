package bus

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestMain checks that no goroutine is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newPublisher(t testing.TB, ctx context.Context, nc *nats.Conn, name string, cfg PublisherConfig) *Publisher {
	t.Helper()
	p, err := NewPublisher(ctx, nc, name, cfg)
	if err != nil {
		t.Fatalf("NewPublisher(%q): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// avFrames is testdata/av.ts as pkg/tsframes demuxes it.
func avFrames(t testing.TB) *tstest.Demuxed {
	t.Helper()
	return tstest.Demux(t, tstest.Read(t, "av.ts"))
}

// h264Opus is an announcement with one H.264 (PID 256) and one Opus (PID
// 257) track, for tests that build frames by hand.
var h264Opus = tsframes.Announcement{Tracks: []tsframes.Track{
	{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01e"},
	{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000},
}}

func videoFrame(pts int64, key bool, data []byte) tsframes.Frame {
	return tsframes.Frame{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, PTS: pts, DTS: pts, Key: key, Data: data}
}

func audioFrame(pts int64, data []byte) tsframes.Frame {
	return tsframes.Frame{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, PTS: pts, DTS: pts, Duration: 1800, Data: data}
}

// collector gathers the messages a Subscription delivers.
type collector struct {
	mu   sync.Mutex
	msgs []Message
	ch   chan struct{} // signalled after every message
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) handle(m Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// waitFor waits until cond holds for the collected messages or ctx ends.
func (c *collector) waitFor(t testing.TB, ctx context.Context, what string, cond func([]Message) bool) []Message {
	t.Helper()
	for {
		msgs := c.snapshot()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-c.ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (have %d messages)", what, ctx.Err(), len(msgs))
		}
	}
}

func countFrames(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		if m.IsFrame() {
			n++
		}
	}
	return n
}

func subscribe(t testing.TB, ctx context.Context, nc *nats.Conn, name string, opts SubscribeOptions, c *collector) *Subscription {
	t.Helper()
	s, err := Subscribe(ctx, nc, name, opts, c.handle)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", name, err)
	}
	t.Cleanup(s.Close)
	return s
}

// pollUntil checks cond on a ticker until it holds or ctx ends; for
// server-side state that emits no event (retention).
func pollUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testLogger logs to t.Log; only for components stopped before the test ends.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
