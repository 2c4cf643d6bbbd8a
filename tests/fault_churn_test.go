//go:build external

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/pkg/whepbench"
)

// Churn (issue 6): sessions opened and closed on a whep-node leave nothing
// behind.
const (
	// churnTimeout bounds TestChurn once the binaries are built. The run
	// takes about 30 s on the 2-core machine.
	churnTimeout = 4 * time.Minute
	// churnWarmup sessions run before the baseline: the node's pools,
	// caches and heap reach the size they keep under this load. (With 200,
	// the heap had not: RSS grew 6-12 % over the next 2,000 sessions, and
	// then stayed flat over 8,000 more; with 600 or 1,000 it grew 3.5-4 %
	// on the shared machine, but 11 % once in CI, where sessions ran at
	// 250/s: the peak of the heap depends on how many sessions overlap.)
	churnWarmup = 2000
	// churnSessions are measured, churnConcurrency under way at a time.
	churnSessions    = 2000
	churnConcurrency = 32
	// churnGoroutineSlack: goroutines that come and go on their own in an
	// idle node (timer callbacks, the NATS client's and the catalog
	// watcher's work) may be counted in one sample and not in the other. A
	// leak of one goroutine per 400 sessions would exceed it.
	churnGoroutineSlack = 5
	// churnMaxRSSGrowth bounds the RSS growth over the baseline.
	churnMaxRSSGrowth = 0.10
	// churnRSSSamples reads of the RSS, churnRSSEvery apart, are taken for
	// the baseline and for the figure after the run, each as soon as the
	// node is idle after a churn run (the same point of its life), and their
	// medians compared: the RSS of a Go process moves by a few MiB over a
	// second or two (the scavenger returns idle heap to the OS; the heap
	// grows again up to its GC goal), up to 7 % of the node's ~37 MiB.
	churnRSSSamples = 5
	churnRSSEvery   = 250 * time.Millisecond
	// churnPoll is how often the node's figures are read while waiting for
	// them to settle.
	churnPoll = 100 * time.Millisecond
	// churnNodeConnName is the name of the whep-node's NATS connection
	// (node.Run).
	churnNodeConnName = "whepcast-whep-node"
)

// TestChurn runs the real broker and whep-node binaries on a NATS server
// with a monitoring port, a looped av.ts as the stream, and whep-bench
// churn: churnWarmup sessions, the baseline, churnSessions sessions
// churnConcurrency at a time, each until its first keyframe; every session
// must play, and the node's goroutines, open files and NATS subscriptions
// must come back to the baseline, its RSS within churnMaxRSSGrowth.
func TestChurn(t *testing.T) {
	whepLeakCheck(t)
	brokerBin, nodeBin := e2eBin.get(t)
	benchBin := e2eBin.benchPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), churnTimeout)
	defer cancel()

	nc := startNATSCluster(t, ctx, natstest.Config{Servers: 1})
	s := &e2eStack{natsURL: nc.URL()}
	ingestPort := proctest.FreePort(t, "tcp")
	s.ingestURL = fmt.Sprintf("http://127.0.0.1:%d", ingestPort)
	s.broker = e2eStart(t, "broker", brokerBin,
		"--nats-url", s.natsURL,
		"--ingest-addr", fmt.Sprintf("127.0.0.1:%d", ingestPort),
		"--rtmp-addr", "",
		"--storage", "memory",
		"--data-dir", t.TempDir(),
		"--log-level", "warn")
	t.Cleanup(func() { e2eCheckExit(t, s.broker) })
	s.broker.WaitHTTP(t, ctx, s.ingestURL+"/healthz", "ok\n")

	httpPort, icePort := proctest.FreePort(t, "tcp"), proctest.FreePort(t, "udp")
	s.nodeURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	// Errors only: pion logs a few warnings per session closed (see the
	// whep-node log at warn).
	s.node = e2eStart(t, "whep-node", nodeBin,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--ice-udp-addr", fmt.Sprintf("127.0.0.1:%d", icePort),
		"--nats-url", s.natsURL,
		"--log-level", "error")
	t.Cleanup(func() { e2eCheckExit(t, s.node) })
	s.node.WaitHTTP(t, ctx, s.nodeURL+"/readyz", "ready\n")
	s.ingest(t, "churn", "av.ts", true)
	s.waitLive(t, ctx, "churn")

	p := newChurnProbe(t, s, nc.MonitorURL(0))
	idle := p.waitIdle(t, ctx, "before any session", func(churnFigures) bool { return true })
	t.Logf("idle node: %s", idle)

	url := s.nodeURL + "/whep/churn"
	warm := runChurn(t, ctx, benchBin, url, churnWarmup, p.pid, "-1s")
	t.Logf("warm-up: %d sessions in %.1f s", warm.Played, warm.ElapsedS)
	// The warm-up is a first check: the hub of the stream and its
	// subscription end with the last viewer.
	base := p.waitIdle(t, ctx, "after the warm-up", func(f churnFigures) bool { return f.subs == idle.subs })
	base.rss = p.medianRSS(t, ctx)
	t.Logf("baseline: %s", base)

	rep := runChurn(t, ctx, benchBin, url, churnSessions, p.pid, "1s")
	t.Logf("FIGURE churn_sessions_per_s=%.1f churn_ttff_p50_ms=%.1f churn_ttff_p95_ms=%.1f churn_node_cpu_per_session_ms=%.2f",
		rep.SessionsPerS, float64(rep.TTFF.P50)/1e6, float64(rep.TTFF.P95)/1e6, rep.Servers[0].CPUPerSessionMS)

	after := p.waitIdle(t, ctx, "back to the baseline", func(f churnFigures) bool {
		return f.subs == base.subs && f.fds == base.fds && f.goroutines <= base.goroutines+churnGoroutineSlack
	})
	after.rss = p.medianRSS(t, ctx)
	growth := float64(after.rss-base.rss) / float64(base.rss)
	t.Logf("after: %s", after)
	t.Logf("FIGURE churn_rss_growth_pct=%.1f churn_goroutines_delta=%d churn_fds_delta=%d churn_subs_delta=%d",
		100*growth, after.goroutines-base.goroutines, after.fds-base.fds, after.subs-base.subs)
	if growth >= churnMaxRSSGrowth {
		t.Errorf("node RSS grew %.1f %% over %d sessions (%d → %d KiB), want < %.0f %%",
			100*growth, churnSessions, base.rss>>10, after.rss>>10, 100*churnMaxRSSGrowth)
	}
}

// runChurn runs whep-bench churn of n sessions on url, measuring the node
// (pid) with the given --baseline, logs its table and checks that every
// session played and was deleted.
func runChurn(t *testing.T, ctx context.Context, bin, url string, n, pid int, baseline string) whepbench.ChurnReport {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "churn.json")
	cmd := exec.CommandContext(ctx, bin, "churn", "--url", url, "--sessions", strconv.Itoa(n),
		"--concurrency", strconv.Itoa(churnConcurrency), "--pid", strconv.Itoa(pid), "--baseline", baseline,
		"--json", jsonPath)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	t.Logf("whep-bench churn --sessions %d:\n%s", n, out)
	if err != nil {
		t.Fatalf("whep-bench churn: %v", err)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep whepbench.ChurnReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if rep.Sessions != n || rep.Started != n || rep.Opened != n || rep.Connected != n || rep.Played != n || rep.Failed != 0 ||
		len(rep.Failures) != 0 || rep.DeleteErrors != 0 || rep.TTFF.Count != n {
		t.Fatalf("churn of %d sessions: started %d, opened %d, connected %d, played %d, failed %d %v, delete errors %d, TTFF count %d",
			n, rep.Started, rep.Opened, rep.Connected, rep.Played, rep.Failed, rep.Failures, rep.DeleteErrors, rep.TTFF.Count)
	}
	if len(rep.Servers) != 1 || rep.Servers[0].PID != pid || rep.Servers[0].Err != "" {
		t.Fatalf("churn report servers %+v, want the node (pid %d)", rep.Servers, pid)
	}
	return rep
}

// churnFigures are what the test reads of the node.
type churnFigures struct {
	// sessions is the whepcast_whep_sessions gauge, listed the entries of
	// GET /sessions.
	sessions, listed int
	goroutines       int   // go_goroutines
	fds              int   // entries of /proc/PID/fd
	subs             int   // subscriptions of its NATS connection
	rss              int64 // VmRSS, bytes (see medianRSS)
}

func (f churnFigures) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %d NATS subscriptions, RSS %d KiB (sessions: gauge %d, listed %d)",
		f.goroutines, f.fds, f.subs, f.rss>>10, f.sessions, f.listed)
}

// churnProbe reads the figures of the whep-node. It talks to the node over
// one keep-alive connection for the whole test, so that this connection is
// in every count of the node's open files.
type churnProbe struct {
	nodeURL, monitorURL string
	pid                 int
	node                *proctest.Proc
	http                *http.Client
}

func newChurnProbe(t *testing.T, s *e2eStack, monitorURL string) *churnProbe {
	t.Helper()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &churnProbe{nodeURL: s.nodeURL, monitorURL: monitorURL, pid: s.node.PID(), node: s.node,
		http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// waitIdle polls the node until it has no session and done holds, and
// returns the figures then; it fails the test when ctx ends or the node
// exits first.
func (p *churnProbe) waitIdle(t *testing.T, ctx context.Context, what string, done func(churnFigures) bool) churnFigures {
	t.Helper()
	tick := time.NewTicker(churnPoll)
	defer tick.Stop()
	for {
		f, err := p.read(ctx)
		if err == nil && f.sessions == 0 && f.listed == 0 && done(f) {
			return f
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node not idle %s in time; last figures: %s (%v)", what, f, err)
		case <-p.node.Done():
			t.Fatalf("whep-node exited (%v) while waiting %s", p.node.Err(), what)
		case <-tick.C:
		}
	}
}

// medianRSS reads the node's RSS churnRSSSamples times, churnRSSEvery
// apart, and returns the median.
func (p *churnProbe) medianRSS(t *testing.T, ctx context.Context) int64 {
	t.Helper()
	tick := time.NewTicker(churnRSSEvery)
	defer tick.Stop()
	var rss []int64
	for {
		s, err := whepbench.ReadProc(p.pid)
		if err != nil {
			t.Fatal(err)
		}
		if rss = append(rss, s.RSS); len(rss) == churnRSSSamples {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("reading the node's RSS: %v", ctx.Err())
		case <-tick.C:
		}
	}
	slices.Sort(rss)
	t.Logf("node RSS: %d reads, %d to %d KiB", len(rss), rss[0]>>10, rss[len(rss)-1]>>10)
	return rss[len(rss)/2]
}

func (p *churnProbe) read(ctx context.Context) (churnFigures, error) {
	var f churnFigures
	metrics, err := p.get(ctx, p.nodeURL+"/metrics")
	if err != nil {
		return f, err
	}
	for name, dst := range map[string]*int{"whepcast_whep_sessions": &f.sessions, "go_goroutines": &f.goroutines} {
		if *dst, err = churnGauge(metrics, name); err != nil {
			return f, err
		}
	}
	list, err := p.get(ctx, p.nodeURL+"/sessions")
	if err != nil {
		return f, err
	}
	var sessions []json.RawMessage
	if err := json.Unmarshal(list, &sessions); err != nil {
		return f, fmt.Errorf("GET /sessions: %w: %q", err, list)
	}
	f.listed = len(sessions)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		return f, err
	}
	f.fds = len(fds)
	proc, err := whepbench.ReadProc(p.pid)
	if err != nil {
		return f, err
	}
	f.rss = proc.RSS
	f.subs, err = p.natsSubs(ctx)
	return f, err
}

// natsSubs returns the subscriptions of the node's NATS connection, from
// the server's /connz.
func (p *churnProbe) natsSubs(ctx context.Context) (int, error) {
	b, err := p.get(ctx, p.monitorURL+"/connz?subs=1")
	if err != nil {
		return 0, err
	}
	var connz struct {
		Conns []struct {
			CID  uint64   `json:"cid"`
			Name string   `json:"name"`
			Subs uint32   `json:"subscriptions"`
			List []string `json:"subscriptions_list"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(b, &connz); err != nil {
		return 0, fmt.Errorf("/connz: %w", err)
	}
	subs, found := 0, 0
	for _, c := range connz.Conns {
		if c.Name == churnNodeConnName {
			subs, found = int(c.Subs), found+1
			if int(c.Subs) != len(c.List) {
				return 0, fmt.Errorf("/connz: connection %d counts %d subscriptions and lists %d", c.CID, c.Subs, len(c.List))
			}
		}
	}
	if found != 1 {
		return 0, fmt.Errorf("/connz: %d connections named %q, want 1", found, churnNodeConnName)
	}
	return subs, nil
}

func (p *churnProbe) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, b)
	}
	return b, nil
}

// churnGauge returns the value of the unlabelled sample name of a
// Prometheus text exposition.
func churnGauge(metrics []byte, name string) (int, error) {
	for line := range strings.Lines(string(metrics)) {
		v, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int(f), nil
	}
	return 0, fmt.Errorf("metric %s not found", name)
}
