//go:build external

package tests

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
)

// natsCLI finds the nats CLI that scripts/test.sh installs.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("the nats CLI is missing: go install github.com/nats-io/natscli/nats@v0.5.1 (scripts/test.sh does it)")
	return ""
}

// TestREADMENatsRecipes runs the README's `nats` CLI recipes against a
// broker with its embedded server and checks what they show.
func TestREADMENatsRecipes(t *testing.T) {
	cli := natsCLI(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	cfg, err := config.LoadBroker([]string{
		"--ingest-addr", "127.0.0.1:0",
		"--rtmp-addr", "",
		"--nats-listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(ctx, cfg, slog.New(slog.DiscardHandler), broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("broker stop: %v", err)
		}
	})
	url := b.NATSURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("NATS URL %q, want a loopback TCP listener", url)
	}
	nats := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, cli, append([]string{"--server", url, "--no-context"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// Subscribe first, the way an operator watches a stream go live.
	sub := proctest.Launch(t, proctest.Cmd{Name: "nats sub", Bin: cli,
		Args: []string{"--server", url, "--no-context", "sub", "media.cam1.>", "--headers-only", "--count", "200"}})
	waitFor(t, ctx, "nats sub to start", func() bool { return strings.Contains(sub.Output(), "Subscribing on") })

	// Ingest av.ts (480 messages, a keyframe every second) until the
	// subscriber has its 200 messages.
	fixture := tstest.Read(t, "av.ts")
	for done := false; !done; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+b.IngestAddr().String()+"/ingest/cam1", bytes.NewReader(fixture))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ingest: %d %s", resp.StatusCode, body)
		}
		select {
		case <-sub.Done():
			if err := sub.Err(); err != nil {
				t.Fatalf("nats sub: %v\n%s", err, sub.Output())
			}
			done = true
		case <-time.After(time.Second):
			// not all 200 seen yet: ingest again
		case <-ctx.Done():
			t.Fatal("timed out waiting for nats sub")
		}
	}
	for _, want := range []string{"Whepcast-Epoch:", "Whepcast-Codec: H264", "Whepcast-Pts:", "Whepcast-Key: 1", "media.cam1.v.key"} {
		if !strings.Contains(sub.Output(), want) {
			t.Errorf("nats sub --headers-only output lacks %q:\n%s", want, sub.Output())
		}
	}

	if out := nats("stream", "ls"); !strings.Contains(out, "MEDIA_cam1") {
		t.Errorf("nats stream ls lacks MEDIA_cam1:\n%s", out)
	}
	if out := nats("stream", "info", "MEDIA_cam1"); !strings.Contains(out, "media.cam1.>") || !strings.Contains(out, "Maximum Age: 30.00s") {
		t.Errorf("nats stream info MEDIA_cam1 lacks its subjects or retention:\n%s", out)
	}
	if out := nats("kv", "ls"); !strings.Contains(out, "whepcast_catalog") {
		t.Errorf("nats kv ls lacks whepcast_catalog:\n%s", out)
	}
	if out := nats("kv", "get", "whepcast_catalog", "cam1", "--raw"); !strings.Contains(out, `"stream":"cam1"`) || !strings.Contains(out, `"codec":"H264"`) {
		t.Errorf("nats kv get whepcast_catalog cam1 lacks the stream or its tracks:\n%s", out)
	}
}

// waitFor polls cond every 50 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
