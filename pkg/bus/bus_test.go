package bus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCtx is a context bounded by d and cancelled at the end of the test.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startServer starts an embedded server (in-process only unless cfg.Port is
// set) with a temporary store, shut down at the end of the test.
func startServer(t testing.TB, cfg embedded.Config) *embedded.Server {
	t.Helper()
	if cfg.Port == 0 {
		cfg.Port = embedded.NoListener
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown nats: %v", err)
		}
	})
	return srv
}

func connect(t testing.TB, srv *embedded.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect(opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

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
		_ = p.Close(ctx)
	})
	return p
}

// avMedia is testdata/av.ts demuxed by pkg/tsframes.
type avMedia struct {
	anns   []tsframes.Announcement
	frames []tsframes.Frame
}

type collectHandler struct{ m *avMedia }

func (h collectHandler) Tracks(a tsframes.Announcement) error {
	h.m.anns = append(h.m.anns, a)
	return nil
}

func (h collectHandler) Frame(f tsframes.Frame) error {
	h.m.frames = append(h.m.frames, f)
	return nil
}

var loadAV = sync.OnceValues(func() (*avMedia, error) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "av.ts"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &avMedia{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tsframes.NewDemuxer(f, tsframes.Options{}).Run(ctx, collectHandler{m}); err != nil {
		return nil, err
	}
	if len(m.anns) == 0 || len(m.frames) == 0 {
		return nil, errors.New("av.ts: no announcement or no frames")
	}
	return m, nil
})

func avFrames(t testing.TB) *avMedia {
	t.Helper()
	m, err := loadAV()
	if err != nil {
		t.Fatalf("demux testdata/av.ts: %v", err)
	}
	return m
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
	t.Cleanup(s.Stop)
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
