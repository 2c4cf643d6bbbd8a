package whepbench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/tstest"
)

// testDeadline bounds each test.
const testDeadline = 60 * time.Second

// leakCheck fails the test when goroutines it started outlive its
// cleanups. Call it first so that its check runs last.
func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// ingestRecorder is an HTTP ingest that records what it reads.
type ingestRecorder struct {
	mu     sync.Mutex
	body   bytes.Buffer
	method string
	ct     string
	te     []string
	auth   string
	path   string
	reads  []time.Time // when each read returned data
	status int
	// firstRead, when not nil, is closed at the first read of data.
	firstRead chan struct{}
}

func (rec *ingestRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.method, rec.ct, rec.te, rec.auth, rec.path = r.Method, r.Header.Get("Content-Type"), r.TransferEncoding, r.Header.Get("Authorization"), r.URL.Path
	status := rec.status
	rec.mu.Unlock()
	if status != 0 {
		// Full duplex: net/http answers at once instead of first reading
		// (up to 256 KiB of) the body the handler left unread.
		_ = http.NewResponseController(w).EnableFullDuplex()
		http.Error(w, "refused by test", status)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			rec.mu.Lock()
			rec.body.Write(buf[:n])
			rec.reads = append(rec.reads, time.Now())
			if rec.firstRead != nil && len(rec.reads) == 1 {
				close(rec.firstRead)
			}
			rec.mu.Unlock()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, "ingested\n")
}

func TestPushPacedChunked(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	av := tstest.Read(t, "av.ts")
	full, err := NewSchedule(av)
	if err != nil {
		t.Fatal(err)
	}
	// The first 16 bursts (about half a second).
	sched, err := NewSchedule(av[:full.bursts[16].off])
	if err != nil {
		t.Fatal(err)
	}
	if sched.Bursts() != 16 {
		t.Fatalf("prefix has %d bursts", sched.Bursts())
	}
	rec := &ingestRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	target, err := newPushTarget(srv.URL+"/ingest/bench", "secret")
	if err != nil {
		t.Fatal(err)
	}
	sent := make([]burstWrite, sched.Bursts())
	start := time.Now()
	res, err := push(ctx, target, sched, start, sent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Body != "ingested" || res.Bursts != 16 || res.Bytes != int64(sched.Bytes()) {
		t.Fatalf("push = %+v", res)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !bytes.Equal(rec.body.Bytes(), av[:sched.Bytes()]) {
		t.Fatalf("ingest read %d bytes, not the %d of the file", rec.body.Len(), sched.Bytes())
	}
	if rec.method != http.MethodPut || rec.ct != "video/mp2t" || len(rec.te) != 1 || rec.te[0] != "chunked" ||
		rec.auth != "Bearer secret" || rec.path != "/ingest/bench" {
		t.Fatalf("request: %s %s, Content-Type %q, Transfer-Encoding %v, Authorization %q", rec.method, rec.path, rec.ct, rec.te, rec.auth)
	}
	for i, s := range sent {
		due := start.Add(sched.bursts[i].at)
		if s.start.Before(due) || s.end.Before(s.start) {
			t.Fatalf("burst %d written from +%v to +%v, due at +%v", i, s.start.Sub(start), s.end.Sub(start), due.Sub(start))
		}
	}
	// Paced: the last burst is due at 15 frames (500 ms).
	if last := sent[len(sent)-1].start.Sub(start); last < 500*time.Millisecond {
		t.Fatalf("last burst written %v after the start", last)
	}
	// The reads are spread as the bursts were: the server saw data arrive
	// over time, not all at the end.
	if len(rec.reads) < 8 || rec.reads[len(rec.reads)-1].Sub(rec.reads[0]) < 400*time.Millisecond {
		t.Fatalf("%d reads over %v", len(rec.reads), rec.reads[len(rec.reads)-1].Sub(rec.reads[0]))
	}
}

func TestPushEarlyRefusal(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	sched, err := NewSchedule(tstest.Read(t, "av.ts"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &ingestRecorder{status: http.StatusUnauthorized}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	target, err := newPushTarget(srv.URL+"/ingest/bench", "")
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	res, err := push(ctx, target, sched, time.Now(), nil, nil)
	if !errors.Is(err, ErrIngest) || res.Status != http.StatusUnauthorized {
		t.Fatalf("push = %+v, %v; want ErrIngest with status 401", res, err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("the refusal took %v to notice (the file lasts 6 s)", took)
	}
}

func TestPushStopAndCancel(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	sched, err := NewSchedule(tstest.Read(t, "av.ts"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &ingestRecorder{firstRead: make(chan struct{})}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	target, err := newPushTarget(srv.URL+"/ingest/bench", "")
	if err != nil {
		t.Fatal(err)
	}

	// stop: the body ends cleanly after the bursts written so far.
	stop := make(chan struct{})
	sent := make([]burstWrite, sched.Bursts())
	done := make(chan error, 1)
	var res pushResult
	go func() {
		var err error
		res, err = push(ctx, target, sched, time.Now(), sent, stop)
		done <- err
	}()
	select {
	case <-rec.firstRead:
	case <-ctx.Done():
		t.Fatal("the ingest read nothing")
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("stopped push: %v", err)
	}
	if res.Status != 200 || res.Bursts == 0 || res.Bursts >= sched.Bursts() {
		t.Fatalf("stopped push = %+v of %d bursts", res, sched.Bursts())
	}
	rec.mu.Lock()
	if !bytes.Equal(rec.body.Bytes(), sched.data[:sched.bursts[res.Bursts].off]) {
		t.Errorf("stopped push: the ingest read %d bytes, want the %d of %d bursts", rec.body.Len(), sched.bursts[res.Bursts].off, res.Bursts)
	}
	rec.mu.Unlock()

	// cancel: the push returns the context's error at once.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := push(cctx, target, sched, time.Now(), nil, nil)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled push: %v, want context.Canceled", err)
	}

	// Nothing listens: ErrIngest.
	srv.Close()
	if _, err := push(ctx, target, sched, time.Now(), nil, nil); !errors.Is(err, ErrIngest) {
		t.Fatalf("push to a closed server: %v, want ErrIngest", err)
	}
}

func TestNewPushTarget(t *testing.T) {
	tg, err := newPushTarget("http://127.0.0.1:8080/ingest/a?x=1", "tok")
	if err != nil || tg.addr != "127.0.0.1:8080" || tg.path != "/ingest/a?x=1" || tg.host != "127.0.0.1:8080" || tg.token != "tok" {
		t.Fatalf("newPushTarget = %+v, %v", tg, err)
	}
	if tg, err := newPushTarget("http://localhost/ingest/a", ""); err != nil || tg.addr != "localhost:80" {
		t.Fatalf("default port: %+v, %v", tg, err)
	}
	for _, bad := range []string{"https://x/ingest/a", "127.0.0.1:8080/ingest", "http:///x", "::"} {
		if _, err := newPushTarget(bad, ""); !errors.Is(err, ErrConfig) {
			t.Errorf("newPushTarget(%q) = %v, want ErrConfig", bad, err)
		}
	}
}
