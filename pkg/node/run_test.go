package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/logtest"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/natsconn"
)

// freePort returns a TCP port of 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRun runs a node with nconf on a new listener until ctx ends or stop
// is called; it returns the node's base URL, its logs and the channel run's
// result arrives on.
func startRun(t *testing.T, ctx context.Context, nconf natsconn.Config) (base string, logs *logtest.Watch, stop context.CancelFunc, done chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = logtest.NewWatch()
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	done = make(chan error, 1)
	go func() {
		done <- run(runCtx, ln, nconf, config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: time.Second}, slog.New(logs))
	}()
	return "http://" + ln.Addr().String(), logs, stop, done
}

// stopRun ends a node's run (stop cancels its context) and fails unless it
// returns nil (on done) before ctx ends.
func stopRun(t *testing.T, ctx context.Context, stop context.CancelFunc, done <-chan error) {
	t.Helper()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("run did not return")
	}
}

// TestRunWaitsForNATS starts a node before its NATS server: it serves HTTP
// at once, /healthz 200 and /readyz 503, retries, and is ready once the
// server is up.
func TestRunWaitsForNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	base, logs, stop, done := startRun(t, ctx, natsconn.Config{URL: "nats://127.0.0.1:" + strconv.Itoa(port), RetryWait: 20 * time.Millisecond, MaxRetryWait: 100 * time.Millisecond})

	// Two failed attempts: the node is waiting, not gone.
	logs.Wait(t, ctx, "NATS not reachable; retrying")
	logs.Wait(t, ctx, "NATS not reachable; retrying")
	if code, body := get(t, ctx, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz while waiting = %d %q", code, body)
	}
	for _, path := range []string{"/readyz", "/sessions", "/whep/cam"} {
		if code, body := get(t, ctx, base+path); code != 503 || !strings.Contains(body, "not connected to NATS") {
			t.Errorf("%s while waiting = %d %q, want 503", path, code, body)
		}
	}

	natstest.Embedded(t, embedded.Config{Port: port})
	logs.Wait(t, ctx, "whep-node serving")
	if code, body := get(t, ctx, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz once connected = %d %q", code, body)
	}
	stopRun(t, ctx, stop, done)
}

// TestRunEnds checks the ways a node that has no NATS connection ends: at
// once on a configuration error, cleanly when its context ends.
func TestRunEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := config.WHEP{ICEUDPAddr: "127.0.0.1:0"}

	t.Run("bad creds file", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		err = run(ctx, ln, natsconn.Config{URL: url, CredsFile: filepath.Join(t.TempDir(), "missing.creds")}, cfg, slog.New(slog.DiscardHandler))
		if !errors.Is(err, natsconn.ErrInvalidConfig) {
			t.Fatalf("run = %v, want ErrInvalidConfig", err)
		}
		if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			t.Fatal("listener still open after run returned")
		}
	})

	t.Run("context ends while waiting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		logs := logtest.NewWatch()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- run(runCtx, ln, natsconn.Config{URL: url, RetryWait: 20 * time.Millisecond}, cfg, slog.New(logs))
		}()
		logs.Wait(t, ctx, "NATS not reachable; retrying")
		stopRun(t, ctx, stop, done)
	})
}

// TestRunWaitsForJetStream connects a node to a NATS server whose JetStream
// is not enabled yet (as a cluster electing its meta leader answers no
// JetStream request): the node retries loading the catalog, is not ready
// meanwhile, and serves once JetStream answers.
func TestRunWaitsForJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	base, logs, stop, done := startRun(t, ctx, natsconn.Config{URL: ns.ClientURL()})

	logs.Wait(t, ctx, "catalog not available; retrying")
	logs.Wait(t, ctx, "catalog not available; retrying")
	if code, _ := get(t, ctx, base+"/readyz"); code != 503 {
		t.Errorf("/readyz without JetStream = %d, want 503", code)
	}
	select {
	case err := <-done:
		t.Fatalf("run returned %v without JetStream, want it to wait", err)
	default:
	}

	if err := ns.EnableJetStream(&natsserver.JetStreamConfig{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	logs.Wait(t, ctx, "whep-node serving")
	if code, body := get(t, ctx, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz once JetStream answers = %d %q", code, body)
	}
	stopRun(t, ctx, stop, done)
}
