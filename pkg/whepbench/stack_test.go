package whepbench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/node"
)

// These tests run against whepcast's own stack, in process: a broker with
// its embedded NATS server (memory storage), its HTTP ingest and its
// in-process WHEP server (node.Serve), all on 127.0.0.1.

func testLogger() *slog.Logger {
	if os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// stack is a running in-process whepcast broker with WHEP.
type stack struct {
	ingest string // http://127.0.0.1:P/ingest/
	whep   string // http://127.0.0.1:P/whep/
}

func startStack(t *testing.T) stack {
	t.Helper()
	cfg, err := config.LoadBroker([]string{"--ingest-addr", "127.0.0.1:0", "--rtmp-addr", "", "--nats-listen", "", "--data-dir", t.TempDir(),
		"--storage", "memory", "--whep-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0", "--log-level", "error"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(context.Background(), cfg, testLogger(), broker.Options{WHEP: node.Serve})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- b.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker stop: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("broker did not stop")
		}
	})
	return stack{ingest: "http://" + b.IngestAddr().String() + "/ingest/", whep: "http://" + b.WHEPAddr().String() + "/whep/"}
}

// startPush pushes sched into url in real time; the cleanup waits for the
// push and checks that it ended with 200.
func startPush(t *testing.T, ctx context.Context, url string, sched *Schedule) {
	t.Helper()
	target, err := newPushTarget(url, "")
	if err != nil {
		t.Fatal(err)
	}
	// The push outlives the test's context: the cleanup waits for its end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), testDeadline)
	done := make(chan error, 1)
	go func() {
		_, err := push(ctx, target, sched, time.Now(), nil, nil)
		done <- err
	}()
	t.Cleanup(func() {
		defer cancel()
		if err := <-done; err != nil {
			t.Errorf("push: %v", err)
		}
	})
}

func avSchedule(t *testing.T) *Schedule {
	t.Helper()
	s, err := NewSchedule(tstest.Read(t, "av.ts"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoadStack plays av.ts with 3 viewers through whepcast's stack.
func TestLoadStack(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	sched := avSchedule(t)
	startPush(t, ctx, st.ingest+"bench", sched)

	rep, err := Load(ctx, LoadConfig{
		URLs:     []string{st.whep + "bench"},
		Viewers:  3,
		Rate:     20,
		Settle:   300 * time.Millisecond,
		Duration: 1500 * time.Millisecond,
		PIDs:     []int{os.Getpid()}, // the stack runs in this process
		Baseline: 300 * time.Millisecond,
		Logger:   testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The counts that do not depend on how busy the machine is (a loaded
	// machine may make viewers miss packets, or drop them: the tool counts
	// that, and TestViewerStats checks the counting).
	v := rep.ViewerStats
	if v.Viewers != 3 || v.Connected != 3 || v.Failed != 0 || v.NoMedia != 0 || v.NoKeyframe != 0 ||
		v.DeleteErrors != 0 || v.Malformed != 0 || len(v.Failures) != 0 {
		t.Fatalf("viewers: %+v", v)
	}
	if v.TTFF.Count != 3 || v.TTFF.Min <= 0 || v.TTFF.Max > 10*time.Second || v.Connect.Count != 3 || v.Connect.Min > v.TTFF.Min {
		t.Fatalf("TTFF %+v, connect %+v", v.TTFF, v.Connect)
	}
	// RTP flowed in the window, at most at the file's rate plus headers.
	if v.PacketRate <= 0 || v.PacketRate > 400 || v.Bitrate <= 0 || v.Bitrate > 2*sched.Bitrate() {
		t.Fatalf("%.1f packets/s, %.0f b/s per viewer (file %.0f b/s)", v.PacketRate, v.Bitrate, sched.Bitrate())
	}
	if len(rep.Servers) != 1 || rep.Servers[0].PID != os.Getpid() || rep.Servers[0].Units != 3 || rep.Servers[0].Err != "" ||
		rep.Servers[0].WindowSeconds < 1.4 || rep.Servers[0].RSSAfter <= 0 || rep.Self.PID != os.Getpid() {
		t.Fatalf("servers %+v, self %+v", rep.Servers, rep.Self)
	}
	if rep.Host.Err != "" || rep.Host.BusyCores <= 0 || rep.Host.CPUs < 1 {
		t.Fatalf("host %+v", rep.Host)
	}
	if rep.WindowS < 1.4 || rep.RampS <= 0 {
		t.Fatalf("window %v s, ramp %v s", rep.WindowS, rep.RampS)
	}
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"connected 3, failed 0, dropped 0", "ttff", "p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLatencyStack measures the latency of av.ts through whepcast's stack
// with one measured and two load viewers.
func TestLatencyStack(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	sched := avSchedule(t)
	rep, err := Latency(ctx, LatencyConfig{
		IngestURL: st.ingest + "lat",
		WHEPURL:   st.whep + "lat",
		Schedule:  sched,
		Viewers:   2,
		Rate:      20,
		Settle:    300 * time.Millisecond,
		PIDs:      []int{os.Getpid()},
		Baseline:  -1,
		Logger:    testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, rep)
	if rep.Frames != 180 || rep.Keyframes != 6 || rep.Viewers.Connected != 3 || rep.Viewers.Failed != 0 {
		t.Fatalf("report %+v", rep)
	}
	// The window opens within 3 s of the 6 s file: at least the last two
	// GOPs are measured. Every arrival matches a written frame. (Missing
	// frames are the server's doing, on a busy machine.)
	if rep.Anchors < 1 || rep.Measured < 60 || rep.Unmatched != 0 || rep.Measured+rep.Missing > rep.Frames {
		t.Fatalf("anchors %d, measured %d, missing %d, unmatched %d", rep.Anchors, rep.Measured, rep.Missing, rep.Unmatched)
	}
	if rep.FromAUEnd.Count != rep.Measured || rep.FromAUEnd.Min < 0 {
		t.Fatalf("from AU end: %+v", rep.FromAUEnd)
	}
	// The next PES start is written after the AU's last packet: every
	// frame but the file's last has both measures, the second smaller.
	if c := rep.FromNextPES.Count; c != rep.Measured-1 && c != rep.Measured {
		t.Fatalf("from next PES: %+v (measured %d)", rep.FromNextPES, rep.Measured)
	}
	if rep.FromNextPES.P50 > rep.FromAUEnd.P50 || rep.FromNextPES.Max > rep.FromAUEnd.Max {
		t.Fatalf("from next PES %+v, from AU end %+v", rep.FromNextPES, rep.FromAUEnd)
	}
}

// TestIngestStack pushes 3 streams of a 1 s cut of av.ts for 2.5 s: each
// stream restarts with a new PUT at least once.
func TestIngestStack(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	av := tstest.Read(t, "av.ts")
	full := avSchedule(t)
	sched, err := NewSchedule(av[:full.bursts[31].off]) // 31 frames: 1 s
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Ingest(ctx, IngestConfig{
		IngestURL: st.ingest,
		Streams:   3,
		Schedule:  sched,
		Duration:  2500 * time.Millisecond,
		Stagger:   300 * time.Millisecond,
		Settle:    200 * time.Millisecond,
		Baseline:  200 * time.Millisecond,
		PIDs:      []int{os.Getpid()},
		Logger:    testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, rep)
	// Each stream pushed the whole file once, then restarted (a stopped
	// push ends with 200 too, after at least its first burst).
	if rep.Streams != 3 || rep.Failed != 0 || rep.Pushes < 6 || rep.Bytes <= int64(3*sched.Bytes()) {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Servers) != 1 || rep.Servers[0].Units != 3 || rep.WindowS < 1.5 {
		t.Fatalf("servers %+v, window %v", rep.Servers, rep.WindowS)
	}
}

func logTable(t *testing.T, rep interface{ WriteText(io.Writer) error }) {
	t.Helper()
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
}

// TestLoadFailures: viewers that cannot connect are counted, with the
// reason, and Load still returns a report.
func TestLoadFailures(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL + "/whep/x"
	refused.Close()
	rep, err := Load(ctx, LoadConfig{
		URLs:     []string{notFound.URL + "/whep/x", refusedURL},
		Viewers:  4,
		Rate:     100,
		Settle:   -1,
		Duration: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 0 || rep.Failed != 4 || len(rep.Failures) != 2 {
		t.Fatalf("report %+v", rep.ViewerStats)
	}
	for msg, n := range rep.Failures {
		if n != 2 || !(strings.Contains(msg, "POST status 404") || strings.Contains(msg, "connection refused")) {
			t.Errorf("failure %q × %d", msg, n)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	loads := map[string]LoadConfig{
		"no URL":      {Viewers: 1, Duration: time.Second},
		"bad URL":     {URLs: []string{"ftp://x/whep"}, Viewers: 1, Duration: time.Second},
		"no viewers":  {URLs: []string{"http://127.0.0.1:1/whep/x"}, Duration: time.Second},
		"no duration": {URLs: []string{"http://127.0.0.1:1/whep/x"}, Viewers: 1},
		"bad rate":    {URLs: []string{"http://127.0.0.1:1/whep/x"}, Viewers: 1, Duration: time.Second, Rate: -1},
		"bad pid":     {URLs: []string{"http://127.0.0.1:1/whep/x"}, Viewers: 1, Duration: time.Second, PIDs: []int{1 << 23}},
	}
	for name, cfg := range loads {
		if _, err := Load(ctx, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Load %s: %v, want ErrConfig", name, err)
		}
	}
	audio, err := NewSchedule(tstest.Read(t, "audio.ts"))
	if err != nil {
		t.Fatal(err)
	}
	lat := map[string]LatencyConfig{
		"no video":   {IngestURL: "http://127.0.0.1:1/ingest/x", WHEPURL: "http://127.0.0.1:1/whep/x", Schedule: audio},
		"no file":    {IngestURL: "http://127.0.0.1:1/ingest/x", WHEPURL: "http://127.0.0.1:1/whep/x"},
		"bad ingest": {IngestURL: "127.0.0.1:1", WHEPURL: "http://127.0.0.1:1/whep/x", Schedule: audio},
	}
	for name, cfg := range lat {
		if _, err := Latency(ctx, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Latency %s: %v, want ErrConfig", name, err)
		}
	}
	ing := map[string]IngestConfig{
		"no streams": {IngestURL: "http://127.0.0.1:1/ingest/", Schedule: audio, Duration: 10 * time.Second},
		"no file":    {IngestURL: "http://127.0.0.1:1/ingest/", Streams: 1, Duration: 10 * time.Second},
		"short":      {IngestURL: "http://127.0.0.1:1/ingest/", Streams: 1, Schedule: audio, Duration: 2 * time.Second},
		"bad URL":    {IngestURL: "https://127.0.0.1:1/ingest/", Streams: 1, Schedule: audio, Duration: 10 * time.Second},
	}
	for name, cfg := range ing {
		if _, err := Ingest(ctx, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Ingest %s: %v, want ErrConfig", name, err)
		}
	}
}
