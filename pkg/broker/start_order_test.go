package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/logtest"
	"github.com/whepcast/whepcast/internal/natstest"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func status(t *testing.T, ctx context.Context, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(""))
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStartWaitsForNATS starts a broker before its external NATS server:
// Start waits, the ingest listener answers 503 meanwhile, and the broker
// serves once the server is up. A Start whose context ends first returns
// that error (Run: nil) and leaves nothing running.
func TestStartWaitsForNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	natsPort := freePort(t)
	ingestAddr := "127.0.0.1:" + freePort(t)
	cfg := testConfig(t, "--nats-url", "nats://127.0.0.1:"+natsPort, "--ingest-addr", ingestAddr, "--storage", "memory")
	logs := logtest.NewWatch()
	type started struct {
		b   *Broker
		err error
	}
	result := make(chan started, 1)
	go func() {
		b, err := Start(ctx, cfg, slog.New(logs), Options{ShutdownTimeout: 5 * time.Second})
		result <- started{b, err}
	}()
	logs.Wait(t, ctx, "NATS not reachable; retrying")
	base := "http://" + ingestAddr
	for _, r := range []struct{ method, path string }{{"GET", "/healthz"}, {"GET", "/readyz"}, {"PUT", "/ingest/cam"}} {
		if code, body := status(t, ctx, r.method, base+r.path); code != 503 || !strings.Contains(body, "not connected to NATS") {
			t.Errorf("%s %s while waiting = %d %q, want 503", r.method, r.path, code, body)
		}
	}

	natstest.Embedded(t, embedded.Config{Port: mustAtoi(t, natsPort)})
	var s started
	select {
	case s = <-result:
	case <-ctx.Done():
		t.Fatal("Start did not return once NATS was up")
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	if code, body := status(t, ctx, "GET", base+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz once connected = %d %q", code, body)
	}
	if err := s.b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("context ends first", func(t *testing.T) {
		cfg := testConfig(t, "--nats-url", "nats://127.0.0.1:"+freePort(t), "--ingest-addr", ingestAddr)
		logs := logtest.NewWatch()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := Start(runCtx, cfg, slog.New(logs), Options{})
			done <- err
		}()
		logs.Wait(t, ctx, "NATS not reachable; retrying")
		stop()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Start = %v, want context.Canceled", err)
			}
		case <-ctx.Done():
			t.Fatal("Start did not return")
		}
		// The ingest listener is released.
		ln, err := net.Listen("tcp", ingestAddr)
		if err != nil {
			t.Fatalf("ingest address still bound: %v", err)
		}
		ln.Close()

		runCtx, stop = context.WithCancel(ctx)
		go func() { done <- Run(runCtx, cfg, slog.New(logs), Options{}) }()
		logs.Wait(t, ctx, "NATS not reachable; retrying")
		stop()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil when ctx ends while waiting", err)
		}
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
