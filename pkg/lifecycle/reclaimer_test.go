package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
)

// TestMain checks that no goroutine is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDeadline bounds every wait of a test.
const testDeadline = 30 * time.Second

// retention is the shortest retention JetStream allows, to keep tests short.
const retention = bus.MinMaxAge

// oneShot is the start of av.ts: the PAT, the PMT and the first GOPs, about
// the 22 KB of the one-shot PUTs that filled the store in issue 12.
func oneShot(t testing.TB) []byte {
	return tstest.Read(t, "av.ts")[:188*120]
}

// stack is a broker's lifecycle without its HTTP side: the ingest
// publications on a bus, behind an Admission, swept by a Reclaimer.
type stack struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	catalog *bus.Catalog
	pubs    *ingest.Publications
	adm     *Admission
	rec     *Reclaimer
	reg     *prometheus.Registry
}

func newStack(t *testing.T, nc *nats.Conn, ac AdmissionConfig, stream bus.StreamConfig) *stack {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := bus.OpenCatalog(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{nc: nc, js: js, catalog: cat, reg: prometheus.NewRegistry()}
	m, err := ingest.NewMetrics(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	if ac.StorageBudget > 0 {
		ac.Usage = StorageUsage(js)
	}
	ac.Successor = func(name string) bool { return s.successor(name) }
	if s.adm, err = NewAdmission(ac); err != nil {
		t.Fatal(err)
	}
	s.pubs, err = ingest.NewPublications(ingest.Config{
		NewPublisher: s.adm.Publishers(ingest.BusPublishers(nc, bus.PublisherConfig{Stream: stream, CatalogRefresh: 100 * time.Millisecond})),
		Metrics:      m,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := s.pubs.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	s.rec, err = NewReclaimer(js, ReclaimerConfig{
		Retention: stream.MaxAge,
		Interval:  50 * time.Millisecond,
		Live:      s.adm.Live,
		OnRemove:  m.DeleteStream,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) successor(name string) bool {
	for _, p := range s.pubs.Live() {
		if p.Stream == name && p.Waiting {
			return true
		}
	}
	return false
}

// push publishes data as stream name, to its end.
func (s *stack) push(ctx context.Context, name string, data []byte) error {
	return s.pushFrom(ctx, name, bytes.NewReader(data))
}

// pushFrom publishes body as stream name, to its end.
func (s *stack) pushFrom(ctx context.Context, name string, body io.Reader) error {
	_, err := s.pubs.Ingest(ctx, name, ingest.Source{Kind: "test", Body: body})
	return err
}

// mediaStreams returns the names of the media streams in JetStream.
func (s *stack) mediaStreams(t testing.TB) []string {
	t.Helper()
	ms, err := bus.MediaStreams(t.Context(), s.js)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// catalogEntries is the number of entries in the catalog.
func (s *stack) catalogEntries(t testing.TB) int {
	t.Helper()
	es, err := s.catalog.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// streamSeries is the number of metrics series labelled with a stream.
func (s *stack) streamSeries(t testing.TB) int {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" {
					n++
				}
			}
		}
	}
	return n
}

// waitFor calls cond until it is true or the test deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// sweepUntil sweeps until cond is true.
func (s *stack) sweepUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		if _, err := s.rec.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		return cond()
	})
}

func TestReclaimerRemovesEndedStreamOnlyAfterItsRetention(t *testing.T) {
	s := newStack(t, natstest.EmbeddedConn(t), AdmissionConfig{}, bus.StreamConfig{MaxAge: retention})
	if err := s.push(t.Context(), "once", oneShot(t)); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	e, err := s.catalog.Get(t.Context(), "once")
	if err != nil || e.State != bus.StateEnded {
		t.Fatalf("catalog entry after the push: %+v, %v; want ended", e, err)
	}
	if n := s.streamSeries(t); n == 0 {
		t.Fatal("no metrics series of the stream after its push")
	}
	removed, err := s.rec.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 && time.Since(ended) < retention {
		t.Fatalf("removed %v within its retention", removed)
	}
	s.sweepUntil(t, "the ended stream to be removed", func() bool { return len(s.mediaStreams(t)) == 0 })
	if since := time.Since(ended); since < retention {
		t.Fatalf("removed %v after it ended, before its retention %v", since, retention)
	}
	if _, err := s.catalog.Get(t.Context(), "once"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("catalog entry after removal: %v, want ErrNotFound", err)
	}
	if n := s.streamSeries(t); n != 0 {
		t.Fatalf("%d metrics series of the stream after its removal, want 0", n)
	}
	// The name can be used again.
	if err := s.push(t.Context(), "once", oneShot(t)); err != nil {
		t.Fatalf("pushing a removed stream again: %v", err)
	}
	if got := s.mediaStreams(t); len(got) != 1 {
		t.Fatalf("media streams after pushing again: %v", got)
	}
}

func TestReclaimerKeepsStreamsLiveHereOrElsewhere(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := newStack(t, nc, AdmissionConfig{}, bus.StreamConfig{MaxAge: retention})
	// "here" is live on this broker; "elsewhere" on another one (its own
	// publisher, which this broker's Admission does not know).
	body, stop := newHeldBody(oneShot(t))
	done := make(chan error, 1)
	go func() { done <- s.pushFrom(t.Context(), "here", body) }()
	p, err := bus.NewPublisher(t.Context(), nc, "elsewhere", bus.PublisherConfig{Stream: bus.StreamConfig{MaxAge: retention}, CatalogRefresh: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := tstest.Demux(t, oneShot(t))
	if err := p.Announce(t.Context(), d.Announcements[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both streams live", func() bool {
		e, err := s.catalog.Get(t.Context(), "here")
		return err == nil && e.State == bus.StateLive
	})
	// Swept for twice the retention: past that of their creation.
	deadline := time.Now().Add(2 * retention)
	waitFor(t, "twice the retention", func() bool {
		if _, err := s.rec.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := s.mediaStreams(t); len(got) != 2 {
			t.Fatalf("media streams while live: %v, want both", got)
		}
		return time.Now().After(deadline)
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.sweepUntil(t, "both ended streams to be removed", func() bool { return len(s.mediaStreams(t)) == 0 })
}

// heldBody reads data, then blocks until released: a publication that
// stays live.
type heldBody struct {
	r       *bytes.Reader
	release chan struct{}
}

func newHeldBody(data []byte) (*heldBody, func()) {
	b := &heldBody{r: bytes.NewReader(data), release: make(chan struct{})}
	return b, func() { close(b.release) }
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.r.Len() > 0 {
		return b.r.Read(p)
	}
	<-b.release
	return 0, io.EOF
}

// TestManyOneShotStreamsAreReclaimed is issue 12's run, scaled: one-shot
// streams with distinct names pushed over time under a small
// --max-streams and storage budget, with a short retention. Every new
// stream is accepted while under --max-streams; the ended ones are removed
// after their retention; JetStream streams, catalog entries, goroutines and
// metrics series return to their baseline.
//
// WHEPCAST_ONESHOT_STREAMS sets the number of names (default 1,000, 100
// with -short): the 10,000 run by hand, see docs/operations.md.
func TestManyOneShotStreamsAreReclaimed(t *testing.T) {
	names := 1000
	if testing.Short() {
		names = 100
	}
	if v := os.Getenv("WHEPCAST_ONESHOT_STREAMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WHEPCAST_ONESHOT_STREAMS=%q: want a positive number", v)
		}
		names = n
	}
	const maxStreams = 4
	nc := natstest.EmbeddedConn(t)
	s := newStack(t, nc, AdmissionConfig{MaxStreams: maxStreams, StorageBudget: 64 << 20}, bus.StreamConfig{MaxAge: retention})
	ctx, cancel := context.WithCancel(t.Context())
	swept := make(chan error, 1)
	go func() { swept <- s.rec.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-swept; err != nil {
			t.Error(err)
		}
	}()
	data := oneShot(t)
	// A first stream sets up what the connection keeps for all its
	// publishers (its JetStream publishing context); the baseline counts it.
	if err := s.push(t.Context(), "warm-up", data); err != nil {
		t.Fatalf("push: %v", err)
	}
	baseGoroutines := runtime.NumGoroutine()
	var heapAfterWarmUp uint64 // the heap in use after the first tenth of the names

	start := time.Now()
	errs := make(chan error, maxStreams)
	for i := range names {
		// maxStreams-1 pushes at once: always under the limit.
		if i >= maxStreams-1 {
			if err := <-errs; err != nil {
				t.Fatalf("push: %v", err)
			}
		}
		if i == names/10 {
			heapAfterWarmUp = heapInUse()
		}
		go func() { errs <- s.push(t.Context(), fmt.Sprintf("job-%05d", i), data) }()
	}
	for range maxStreams - 1 {
		if err := <-errs; err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	pushed := time.Since(start)
	waitFor(t, "every ended stream to be reclaimed", func() bool { return len(s.mediaStreams(t)) == 0 })
	waitFor(t, "an empty catalog", func() bool { return s.catalogEntries(t) == 0 })
	if n := s.streamSeries(t); n != 0 {
		t.Fatalf("%d metrics series labelled with a stream after reclaiming, want 0", n)
	}
	waitForGoroutines(t, baseGoroutines+2)
	// The process holds the embedded nats-server too: its heap after all the
	// streams are gone stays within a bound of the heap during the run's
	// first tenth (nothing kept per name).
	heapEnd := heapInUse()
	t.Logf("%d one-shot streams pushed in %v, all reclaimed %v later; heap in use %.1f MiB after the first tenth, %.1f MiB at the end",
		names, pushed.Round(time.Millisecond), (time.Since(start) - pushed).Round(time.Millisecond),
		float64(heapAfterWarmUp)/(1<<20), float64(heapEnd)/(1<<20))
	if heapEnd > heapAfterWarmUp+32<<20 {
		t.Errorf("heap in use grew from %d to %d bytes over %d names", heapAfterWarmUp, heapEnd, names)
	}
}

// heapInUse is the heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// waitForGoroutines waits until at most n goroutines run; on timeout it
// fails with the goroutines' stacks, to name what was left.
func waitForGoroutines(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		select {
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", got, n, buf)
		case <-tick.C:
		}
	}
}
