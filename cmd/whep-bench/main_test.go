package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, 2, "Usage: whep-bench COMMAND"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"load", "--help"}, 0, "--viewers"},
		{[]string{"load"}, 2, "no WHEP URL"},
		{[]string{"load", "--url", "http://127.0.0.1:1/whep/x", "--rate", "fast"}, 2, "positive number per second"},
		{[]string{"load", "--url", "http://127.0.0.1:1/whep/x", "--cpu", "x"}, 2, "--cpu"},
		{[]string{"load", "--url", "http://127.0.0.1:1/whep/x", "extra"}, 2, "unexpected arguments"},
		{[]string{"load", "--url", "http://127.0.0.1:1/whep/x", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"latency", "--ingest", "http://127.0.0.1:1/ingest/x", "--whep", "http://127.0.0.1:1/whep/x"}, 2, "--file is required"},
		{[]string{"latency", "--ingest", "http://127.0.0.1:1/ingest/x", "--whep", "http://127.0.0.1:1/whep/x", "--file", "/nonexistent.ts"}, 2, "no such file"},
		{[]string{"ingest", "--ingest", "http://127.0.0.1:1/ingest/", "--file", "main.go"}, 2, "unusable MPEG-TS file"},
	}
	for _, c := range cases {
		var out strings.Builder
		if code := run(c.args, &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("run(%q) = %d, output:\n%s\nwant %d and %q", c.args, code, out.String(), c.code, c.want)
		}
	}
}

// TestIngestJSON runs the ingest command against a test ingest and reads
// its JSON report.
func TestIngestJSON(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/ingest/bench-0" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		puts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	file := filepath.Join("..", "..", "testdata", "audio.ts")
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr strings.Builder
	code := run([]string{"ingest", "--ingest", srv.URL + "/ingest/", "--streams", "1", "--file", file,
		"--duration", "1500ms", "--stagger", "1ms", "--settle", "1ms", "--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "scenario") || !strings.Contains(stdout.String(), "1, failed 0, pushes 1") {
		t.Fatalf("table:\n%s", stdout.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Streams int     `json:"streams"`
		Failed  int     `json:"failed"`
		Pushes  int     `json:"pushes"`
		Bytes   int64   `json:"bytes"`
		WindowS float64 `json:"window_s"`
		Self    struct {
			PID int `json:"pid"`
		} `json:"self"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if rep.Streams != 1 || rep.Failed != 0 || rep.Pushes != 1 || rep.Bytes <= 0 || rep.WindowS < 1 || rep.Self.PID != os.Getpid() || puts.Load() != 1 {
		t.Fatalf("report %+v (%d PUTs), JSON %s", rep, puts.Load(), b)
	}
}
