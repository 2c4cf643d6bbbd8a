package embedded

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStartTCPAndInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := Start(ctx, Config{Port: 0, DataDir: t.TempDir(), ServerName: "t1", MaxPayload: 64 << 10, Logger: logger})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Shutdown(context.Background())
		}
	}()

	url := srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:PORT", url)
	}
	port, err := strconv.Atoi(url[strings.LastIndexByte(url, ':')+1:])
	if err != nil || port <= 0 {
		t.Fatalf("ClientURL %q has no port", url)
	}

	tcp, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("tcp connect: %v", err)
	}
	defer tcp.Close()
	inproc, err := srv.Connect(nats.Name("inproc"))
	if err != nil {
		t.Fatalf("in-process connect: %v", err)
	}
	defer inproc.Close()
	if got := inproc.MaxPayload(); got != 64<<10 {
		t.Fatalf("MaxPayload = %d, want %d", got, 64<<10)
	}

	// JetStream: a stream written over TCP is read back in-process.
	jsTCP, err := jetstream.New(tcp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsTCP.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	ack, err := jsTCP.Publish(ctx, "t.a", []byte("hello"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Stream != "T" || ack.Sequence != 1 {
		t.Fatalf("ack = %+v, want stream T seq 1", ack)
	}
	jsIn, err := jetstream.New(inproc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := jsIn.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	if string(msg.Data) != "hello" || msg.Subject != "t.a" {
		t.Fatalf("msg = %q on %q, want hello on t.a", msg.Data, msg.Subject)
	}

	// Shutdown closes clients and releases the port.
	tcp.Close()
	inproc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	stopped = true
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d not released: %v", port, err)
	}
	l.Close()
	// Second Shutdown is a no-op.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "component=nats-server") {
		t.Fatalf("server logs were not routed to slog:\n%s", logs.String())
	}
}

func TestStartNoListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := Start(ctx, Config{Port: NoListener, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Shutdown(context.Background())
	if srv.ClientURL() != "" {
		t.Fatalf("ClientURL = %q, want empty without listener", srv.ClientURL())
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != DefaultMaxPayload {
		t.Fatalf("default MaxPayload = %d, want %d", got, DefaultMaxPayload)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	if info.Streams != 0 {
		t.Fatalf("fresh store has %d streams", info.Streams)
	}
}

func TestStartErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Port in use: Start returns the listen error, nothing keeps running.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if _, err := Start(ctx, Config{Port: port, DataDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "listen") {
		t.Fatalf("Start on a used port: err = %v, want a listen error", err)
	}

	for _, cfg := range []Config{
		{Port: -2, DataDir: t.TempDir()},
		{Port: 70000, DataDir: t.TempDir()},
		{MaxPayload: -1, DataDir: t.TempDir()},
		{MaxPayload: 65 << 20, DataDir: t.TempDir()},
	} {
		if _, err := Start(ctx, cfg); err == nil {
			t.Errorf("Start(%+v) succeeded, want error", cfg)
		}
	}

	// A cancelled context bounds the start-up.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if srv, err := Start(cctx, Config{Port: NoListener, DataDir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		if srv != nil {
			_ = srv.Shutdown(ctx)
		}
		t.Fatalf("Start with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestRestartKeepsStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()

	srv, err := Start(ctx, Config{Port: NoListener, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "K", Subjects: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	srv, err = Start(ctx, Config{Port: NoListener, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	nc, err = srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	st, err := js.Stream(ctx, "K")
	if err != nil {
		t.Fatalf("stream lost across restart: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream has %d msgs after restart, want 1", n)
	}
}
