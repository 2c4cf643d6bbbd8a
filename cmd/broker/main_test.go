package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"
)

func TestBinary(t *testing.T) {
	bin := proctest.Build(t, "broker")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("help exits 0", func(t *testing.T) {
		out, _, code := proctest.Run(t, ctx, bin, "--help")
		if code != 0 || !strings.Contains(out, "Usage: broker") || !strings.Contains(out, "--udp-ingest") {
			t.Fatalf("--help: exit %d, usage: %s", code, out)
		}
	})

	t.Run("bad config exits 2", func(t *testing.T) {
		_, stderr, code := proctest.Run(t, ctx, bin, "--storage", "disk")
		if code != 2 || !strings.Contains(stderr, `storage: must be file or memory, got "disk"`) {
			t.Fatalf("exit %d, stderr: %s", code, stderr)
		}
	})

	t.Run("ingest then SIGTERM", func(t *testing.T) {
		dir := t.TempDir()
		p := proctest.Start(t, ctx, bin, []string{
			"WHEPCAST_INGEST_ADDR=127.0.0.1:0", "WHEPCAST_RTMP_ADDR=", "WHEPCAST_NATS_LISTEN=127.0.0.1:0",
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
