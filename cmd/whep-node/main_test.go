package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"

	"github.com/whepcast/whepcast/embedded"
)

// buildNode builds this command into a temporary directory.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "whep-node")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

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
	bin := buildNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("help exits 0", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "--help").Output()
		if err != nil {
			t.Fatalf("--help: %v", err)
		}
		if !strings.Contains(string(out), "Usage: whep-node") || !strings.Contains(string(out), "--ice-udp-addr") {
			t.Fatalf("usage: %s", out)
		}
	})

	t.Run("bad config exits 2", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "--start", "never")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v", err)
		}
		if !strings.Contains(stderr.String(), "whep.start") {
			t.Fatalf("stderr: %s", stderr.String())
		}
	})

	t.Run("unreachable NATS exits 1", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, bin, "--nats-url", "nats://127.0.0.1:1", "--http-addr", "127.0.0.1:0",
			"--ice-udp-addr", "127.0.0.1:0")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v", err)
		}
	})

	t.Run("serve then SIGTERM", func(t *testing.T) {
		ns, err := embedded.Start(ctx, embedded.Config{Port: 0, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			_ = ns.Shutdown(sctx)
		}()
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
