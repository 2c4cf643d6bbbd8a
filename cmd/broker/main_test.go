package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"
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
		p := proctest.Start(t, ctx, bin, []string{
			"WHEPCAST_INGEST_ADDR=127.0.0.1:0", "WHEPCAST_NATS_LISTEN=127.0.0.1:0",
			"WHEPCAST_DATA_DIR=" + dir, "WHEPCAST_INGEST_TOKEN=tok"}, "--log-format", "json")
		// The JSON log tells the bound address.
		addr, _ := p.Wait(t, ctx, "broker started")["ingest_addr"].(string)

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

		p.Stop(t, "broker stopped")
	})
}
