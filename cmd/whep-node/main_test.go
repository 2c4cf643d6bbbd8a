package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/proctest"
)

const offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB\r\n" +
	"a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n" +
	"a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=setup:actpass\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"

func get(t *testing.T, ctx context.Context, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/sdp")
	}
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBinary(t *testing.T) {
	bin := proctest.Build(t, "whep-node")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("help exits 0", func(t *testing.T) {
		out, _, code := proctest.Run(t, ctx, bin, "--help")
		if code != 0 || !strings.Contains(out, "Usage: whep-node") || !strings.Contains(out, "--ice-udp-addr") {
			t.Fatalf("--help: exit %d, usage: %s", code, out)
		}
	})

	t.Run("bad config exits 2", func(t *testing.T) {
		_, stderr, code := proctest.Run(t, ctx, bin, "--start", "never")
		if code != 2 || !strings.Contains(stderr, "whep.start") {
			t.Fatalf("exit %d, stderr: %s", code, stderr)
		}
	})

	t.Run("bad creds file exits 1", func(t *testing.T) {
		if _, stderr, code := proctest.Run(t, ctx, bin, "--nats-url", "nats://127.0.0.1:1", "--nats-creds", filepath.Join(t.TempDir(), "missing.creds"),
			"--http-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0"); code != 1 || !strings.Contains(stderr, "missing.creds") {
			t.Fatalf("exit %d, stderr: %s", code, stderr)
		}
	})

	t.Run("waits for NATS", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		url := "nats://127.0.0.1:" + strconv.Itoa(port)
		p := proctest.Start(t, ctx, bin, nil, "--log-format", "json", "--nats-url", url,
			"--http-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0")
		addr, _ := p.Wait(t, ctx, "whep-node connecting to NATS")["http"].(string)
		base := "http://" + addr
		if rec := p.Wait(t, ctx, "NATS not reachable; retrying"); rec["url"] != url {
			t.Errorf("retry logged with url %v, want %s", rec["url"], url)
		}
		if code, body := get(t, ctx, http.MethodGet, base+"/healthz", ""); code != 200 {
			t.Fatalf("/healthz while waiting = %d %q", code, body)
		}
		if code, body := get(t, ctx, http.MethodGet, base+"/readyz", ""); code != 503 {
			t.Fatalf("/readyz while waiting = %d %q", code, body)
		}
		natstest.Embedded(t, embedded.Config{Port: port})
		p.Wait(t, ctx, "whep-node serving")
		if code, body := get(t, ctx, http.MethodGet, base+"/readyz", ""); code != 200 {
			t.Fatalf("/readyz once connected = %d %q", code, body)
		}
		p.Stop(t, "stopped")
	})

	t.Run("serve then SIGTERM", func(t *testing.T) {
		ns := natstest.Embedded(t, embedded.Config{Port: 0})
		p := proctest.Start(t, ctx, bin, nil, "--log-format", "json", "--nats-url", ns.ClientURL(),
			"--http-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0", "--wait-timeout", "200ms")
		addr, _ := p.Wait(t, ctx, "whep-node serving")["http"].(string)
		base := "http://" + addr
		if code, body := get(t, ctx, http.MethodGet, base+"/healthz", ""); code != 200 || body != "ok\n" {
			t.Fatalf("/healthz = %d %q", code, body)
		}
		if code, body := get(t, ctx, http.MethodGet, base+"/readyz", ""); code != 200 {
			t.Fatalf("/readyz = %d %q", code, body)
		}
		if code, body := get(t, ctx, http.MethodPost, base+"/whep/absent", offer); code != 409 {
			t.Fatalf("POST = %d %q", code, body)
		}
		if code, body := get(t, ctx, http.MethodGet, base+"/metrics", ""); code != 200 ||
			!strings.Contains(body, `whepcast_whep_requests_total{code="409",method="POST"} 1`) ||
			!strings.Contains(body, "whepcast_whep_sessions 0") || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("/metrics = %d %s", code, body)
		}
		if code, body := get(t, ctx, http.MethodGet, base+"/sessions", ""); code != 200 || strings.TrimSpace(body) != "[]" {
			t.Fatalf("/sessions = %d %q", code, body)
		}

		p.Stop(t, "stopped")
	})
}
