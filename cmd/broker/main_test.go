package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBroker builds this command into a temporary directory.
func buildBroker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "broker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinary(t *testing.T) {
	bin := buildBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("help exits 0", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "--help").Output()
		if err != nil {
			t.Fatalf("--help: %v", err)
		}
		if !strings.Contains(string(out), "Usage: broker") || !strings.Contains(string(out), "--udp-ingest") {
			t.Fatalf("usage: %s", out)
		}
	})

	t.Run("bad config exits 2", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "--storage", "disk")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v", err)
		}
		if !strings.Contains(stderr.String(), `storage: must be file or memory, got "disk"`) {
			t.Fatalf("stderr: %s", stderr.String())
		}
	})

	t.Run("ingest then SIGTERM", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, bin, "--log-format", "json")
		cmd.Env = append(os.Environ(),
			"WHEPCAST_INGEST_ADDR=127.0.0.1:0", "WHEPCAST_NATS_LISTEN=127.0.0.1:0",
			"WHEPCAST_DATA_DIR="+dir, "WHEPCAST_INGEST_TOKEN=tok")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()

		// The JSON log tells the bound address.
		lines := make(chan map[string]any, 64)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				var rec map[string]any
				if json.Unmarshal(sc.Bytes(), &rec) == nil {
					lines <- rec
				}
			}
		}()
		var addr string
		for addr == "" {
			select {
			case rec, ok := <-lines:
				if !ok {
					t.Fatal("broker exited before it started")
				}
				if rec["msg"] == "broker started" {
					addr, _ = rec["ingest_addr"].(string)
				}
			case <-ctx.Done():
				t.Fatal("broker did not start")
			}
		}

		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "av.ts"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/ingest/cam1", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "stream=cam1") {
			t.Fatalf("ingest: %d %s", resp.StatusCode, body)
		}
		http.DefaultClient.CloseIdleConnections()

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var stopped bool
		for rec := range lines { // drains until the process closes stderr
			if rec["msg"] == "broker stopped" {
				stopped = true
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		if !stopped {
			t.Fatal(`no "broker stopped" log line`)
		}
	})
}
