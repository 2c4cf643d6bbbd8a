package broker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNATSMonitorAddr: --nats-monitor-addr makes the embedded server serve
// /varz and /jsz (with the JetStream store of --data-dir); without it nothing
// listens.
func TestNATSMonitorAddr(t *testing.T) {
	b := startBroker(t, testConfig(t, "--nats-monitor-addr", "127.0.0.1:0"), Options{})
	mon := b.server.MonitorURL()
	if !strings.HasPrefix(mon, "http://127.0.0.1:") {
		t.Fatalf("monitor URL %q, want http://127.0.0.1:PORT", mon)
	}
	get := func(path string, v any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, mon+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	var varz struct {
		ServerName string `json:"server_name"`
	}
	get("/varz", &varz)
	if varz.ServerName != natsName {
		t.Fatalf("/varz server_name %q, want %q", varz.ServerName, natsName)
	}
	var jsz struct {
		Config struct {
			StoreDir string `json:"store_dir"`
		} `json:"config"`
	}
	get("/jsz", &jsz)
	if !strings.HasPrefix(jsz.Config.StoreDir, b.cfg.DataDir) {
		t.Fatalf("/jsz: store dir %q, want under --data-dir %s", jsz.Config.StoreDir, b.cfg.DataDir)
	}

	if off := startBroker(t, testConfig(t), Options{}); off.server.MonitorURL() != "" {
		t.Fatalf("without --nats-monitor-addr the monitor URL is %q", off.server.MonitorURL())
	}
}
