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
		{[]string{"churn", "--help"}, 0, "--concurrency"},
		{[]string{"churn"}, 2, "no WHEP URL"},
		{[]string{"churn", "--url", "http://127.0.0.1:1/whep/x", "--sessions", "0"}, 2, "sessions 0 not in"},
		{[]string{"churn", "--url", "http://127.0.0.1:1/whep/x", "--concurrency", "-2"}, 2, "concurrency -2 not in"},
		{[]string{"churn", "--url", "http://127.0.0.1:1/whep/x", "--hold", "-1s"}, 2, "hold -1s is negative"},
		{[]string{"compare", "--help"}, 0, "--b-pid"},
		{[]string{"compare", "--a-url", "http://127.0.0.1:1/whep/x", "--b-url", "http://127.0.0.1:1/whep/x", "--b-pid", "1"}, 2, "side A: no process to measure"},
		{[]string{"compare", "--a-url", "http://127.0.0.1:1/whep/x", "--a-pid", "1", "--b-pid", "1"}, 2, "side B: whepbench: invalid configuration: no WHEP URL"},
		{[]string{"compare", "--a-url", "http://127.0.0.1:1/whep/x", "--a-pid", "1", "--b-url", "http://127.0.0.1:1/whep/x", "--b-pid", "1", "--rounds", "-1"}, 2, "rounds -1 not in"},
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

// TestChurnJSON runs the churn command against a WHEP endpoint that
// refuses every POST and reads its JSON report: every session failed, with
// the reason, and the command still succeeds.
func TestChurnJSON(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/whep/x" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		posts.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr strings.Builder
	code := run([]string{"churn", "--url", srv.URL + "/whep/x", "--sessions", "5", "--concurrency", "2", "--token", "tok",
		"--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "scenario") || !strings.Contains(stdout.String(), "played 0, failed 5") {
		t.Fatalf("table:\n%s", stdout.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Sessions    int            `json:"sessions"`
		Concurrency int            `json:"concurrency"`
		Started     int            `json:"started"`
		Opened      int            `json:"opened"`
		Played      int            `json:"played"`
		Failed      int            `json:"failed"`
		Failures    map[string]int `json:"failures"`
		Self        struct {
			PID int `json:"pid"`
		} `json:"self"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if rep.Sessions != 5 || rep.Concurrency != 2 || rep.Started != 5 || rep.Opened != 0 || rep.Played != 0 || rep.Failed != 5 ||
		rep.Failures["whepbench: unexpected WHEP response: POST status 503: busy"] != 5 || rep.Self.PID != os.Getpid() || posts.Load() != 5 {
		t.Fatalf("report %+v (%d POSTs), JSON %s", rep, posts.Load(), b)
	}
}
