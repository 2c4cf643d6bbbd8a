package embedded

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// getJSON GETs url with a deadline and decodes its JSON body into v.
func getJSON(t *testing.T, ctx context.Context, url string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200: %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// TestMonitorServesVarzAndJsz: with MonitorAddr on a free loopback port, the
// embedded server serves nats-server's /varz and /jsz (which see the
// server's name and its JetStream streams), also without a client
// listener, and releases the port on Shutdown.
func TestMonitorServesVarzAndJsz(t *testing.T) {
	ctx := t.Context()
	srv, err := Start(ctx, Config{Port: NoListener, DataDir: t.TempDir(), ServerName: "mon", MonitorAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Shutdown(context.Background())
		}
	}()
	mon := srv.MonitorURL()
	u, err := url.Parse(mon)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("MonitorURL = %q, want http://127.0.0.1:PORT", mon)
	}

	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "M", Subjects: []string{"m.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "m.a", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}

	var varz struct {
		ServerName string `json:"server_name"`
		MaxPayload int    `json:"max_payload"`
		JetStream  struct {
			Config *struct {
				StoreDir string `json:"store_dir"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	getJSON(t, ctx, mon+"/varz", &varz)
	if varz.ServerName != "mon" || varz.MaxPayload != DefaultMaxPayload {
		t.Fatalf("/varz: server_name %q max_payload %d, want mon and %d", varz.ServerName, varz.MaxPayload, DefaultMaxPayload)
	}
	if varz.JetStream.Config == nil || varz.JetStream.Config.StoreDir == "" {
		t.Fatalf("/varz reports no JetStream store: %+v", varz.JetStream)
	}

	var jsz struct {
		Streams  int `json:"streams"`
		Messages int `json:"messages"`
	}
	getJSON(t, ctx, mon+"/jsz", &jsz)
	if jsz.Streams != 1 || jsz.Messages != 3 {
		t.Fatalf("/jsz: %d streams, %d messages, want 1 and 3", jsz.Streams, jsz.Messages)
	}

	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("monitor port %s not released: %v", u.Host, err)
	}
	l.Close()
}

// TestMonitorOffByDefault: without MonitorAddr no monitoring listener runs.
func TestMonitorOffByDefault(t *testing.T) {
	srv, err := Start(t.Context(), Config{Port: NoListener, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if srv.MonitorURL() != "" || srv.NATS().MonitorAddr() != nil {
		t.Fatalf("MonitorURL = %q, want none", srv.MonitorURL())
	}
}

// TestMonitorAddrErrors: a malformed address is refused before anything
// starts, and a port in use fails Start with the listen error.
func TestMonitorAddrErrors(t *testing.T) {
	ctx := t.Context()
	for _, addr := range []string{"8222", "127.0.0.1:http-alt", "127.0.0.1:70000", "127.0.0.1:-1"} {
		if srv, err := Start(ctx, Config{Port: NoListener, DataDir: t.TempDir(), MonitorAddr: addr}); err == nil {
			_ = srv.Shutdown(ctx)
			t.Errorf("Start with MonitorAddr %q succeeded, want error", addr)
		} else if !strings.Contains(err.Error(), "monitor address") {
			t.Errorf("MonitorAddr %q: err = %v, want it to name the monitor address", addr, err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if srv, err := Start(ctx, Config{Port: NoListener, DataDir: t.TempDir(), MonitorAddr: l.Addr().String()}); err == nil {
		_ = srv.Shutdown(ctx)
		t.Fatal("Start on a used monitor port succeeded")
	} else if !strings.Contains(err.Error(), "monitor") {
		t.Fatalf("used monitor port: err = %v, want a monitor listen error", err)
	}
}
