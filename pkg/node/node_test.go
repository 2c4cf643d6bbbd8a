package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/pkg/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe serves the node's endpoints and shuts down cleanly when ctx
// ends, leaving no goroutine behind.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := embedded.Start(ctx, embedded.Config{Port: embedded.NoListener, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Shutdown(context.Background()) }()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Serve(serveCtx, ln, nc, config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: time.Second, MaxWaiting: 4},
			slog.New(slog.DiscardHandler))
	}()
	base := "http://" + ln.Addr().String()
	for path, want := range map[string]string{
		"/healthz":      "ok\n",
		"/readyz":       "ready\n",
		"/sessions":     "[]\n",
		"/metrics":      "whepcast_whep_held_requests 0",
		"/":             "<html",
		"/whep/x/y/z/w": "no WHEP resource at",
		"/whep":         "no WHEP resource at",
		"/whep//cam":    "no WHEP resource at",
	} {
		code, body := get(t, ctx, base+path)
		wantCode := 200
		if strings.HasPrefix(path, "/whep") {
			wantCode = 404
		}
		if code != wantCode || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, code, body, wantCode, want)
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still open after Serve returned")
	}
}
