package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/tstest"
)

// livePublisher starts an HTTP publisher of cam1 on srv that sends the
// first half of data and keeps its body open; it returns the writer of the
// rest of the body, the publisher opened for it (publishing) and the
// channel of the response status (0 for a transport error).
func livePublisher(t *testing.T, f *fakeFactory, url string, data []byte) (*io.PipeWriter, *fakePub, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() { _, _ = pw.Write(data[:len(data)/2]) }()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/ingest/cam1", pr)
	if err != nil {
		t.Fatal(err)
	}
	status := make(chan int, 1)
	go func() {
		resp, err := testClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	p := f.nextPub(t)
	waitFrame(t, p)
	return pw, p, status
}

// waitFrame waits until p has published a frame since the last call.
func waitFrame(t *testing.T, p *fakePub) {
	t.Helper()
	select {
	case <-p.got:
	case <-time.After(testDeadline):
		t.Fatal("no frame published")
	}
}

// A body that is not MPEG-TS, or empty, is refused with 400 and leaves the
// live publisher of the stream publishing.
func TestHTTPNotTSDoesNotTakeOver(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	f := newFakeFactory()
	ps, m := newTestPublications(t, f)
	srv := newTestServer(t, ps)
	pw, p1, firstStatus := livePublisher(t, f, srv.URL, data)

	random := make([]byte, 200<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	for name, body := range map[string][]byte{"random": random, "empty": {}} {
		status, _, msg := do(t, http.MethodPut, srv.URL+"/ingest/cam1", bytes.NewReader(body))
		if status != http.StatusBadRequest || !strings.Contains(msg, "not MPEG-TS") {
			t.Fatalf("%s body: status %d %q, want 400 not MPEG-TS", name, status, msg)
		}
	}

	// The first publisher goes on: the rest of its frames are published.
	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case s := <-firstStatus:
		if s != http.StatusOK {
			t.Fatalf("first publisher: status %d, want 200", s)
		}
	case <-time.After(testDeadline):
		t.Fatal("first publisher did not end")
	}
	_, frames, _, _ := p1.snapshot()
	tstest.SameFramesPerTrack(t, frames, want.Frames)
	if pubs, _ := f.snapshot(); len(pubs) != 1 {
		t.Fatalf("%d publishers opened, want only the first one", len(pubs))
	}
	if got := testutil.ToFloat64(m.takeovers); got != 0 {
		t.Fatalf("takeovers = %v", got)
	}
}

// A new publisher that has sent its tracks but no access unit yet does not
// take over; it does at its first access unit.
func TestTakeoverAtFirstAccessUnit(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	ctx := t.Context()

	first := newBlockingSource(data[:len(data)/2])
	firstDone := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(ctx, "cam1", Source{Kind: "first", Body: first, Interrupt: first.interrupt})
		firstDone <- err
	}()
	p1 := f.nextPub(t)
	waitFrame(t, p1)

	// 5000 bytes of av.ts hold its PAT and PMT and no complete access unit.
	const head = 5000
	second := newBlockingSource(bytes.Clone(data[:head]))
	secondDone := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(ctx, "cam1", Source{Kind: "second", Body: second, Interrupt: second.interrupt})
		secondDone <- err
	}()
	select {
	case <-second.drained:
	case <-time.After(testDeadline):
		t.Fatal("the second source was not read")
	}
	if live := ps.Live(); len(live) != 1 || live[0].Epoch != p1.epoch || live[0].Kind != "first" {
		t.Fatalf("live %+v, want the first publication only", live)
	}
	if _, _, _, closed := p1.snapshot(); closed {
		t.Fatal("the first publisher was closed before the second sent an access unit")
	}
	select {
	case p := <-f.opened:
		t.Fatalf("publisher opened (epoch %d) before the first access unit", p.epoch)
	default:
	}
	// The first publisher still publishes: frames beyond its first half.
	half := len(tstest.Demux(t, data[:len(data)/2]).Frames)
	first.feed(t, data[len(data)/2:len(data)*3/4])
	for {
		waitFrame(t, p1)
		if _, frames, _, _ := p1.snapshot(); len(frames) > half {
			break
		}
	}

	// The rest of the second body takes the stream over.
	second.feed(t, data[head:])
	if err := <-firstDone; !errors.Is(err, ErrTakenOver) {
		t.Fatalf("first: %v, want ErrTakenOver", err)
	}
	p2 := f.nextPub(t)
	if p2.epoch <= p1.epoch {
		t.Fatalf("epoch %d after %d", p2.epoch, p1.epoch)
	}
	waitFrame(t, p2)
	second.interrupt()
	<-secondDone
}

// With TakeoverDeny, a new publisher of a live stream is refused at once
// (409), before its body is read, and the live publication goes on.
func TestTakeoverDeny(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewPublications(Config{NewPublisher: f.open, Metrics: m, Takeover: TakeoverDeny})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := ps.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	srv := newTestServer(t, ps)
	pw, p1, firstStatus := livePublisher(t, f, srv.URL, data)

	second := newBlockingSource(data)
	if _, err := ps.Ingest(t.Context(), "cam1", Source{Body: second, Interrupt: second.interrupt}); !errors.Is(err, ErrLive) || StatusCode(err) != http.StatusConflict {
		t.Fatalf("second publisher: %v (status %d), want ErrLive 409", err, StatusCode(err))
	}
	if len(second.data) != len(data) {
		t.Fatal("the refused publisher's body was read")
	}
	status, _, msg := do(t, http.MethodPut, srv.URL+"/ingest/cam1", bytes.NewReader(data))
	if status != http.StatusConflict || !strings.Contains(msg, "takeover is denied") {
		t.Fatalf("second HTTP publisher: %d %q, want 409 takeover is denied", status, msg)
	}

	// Another stream is not affected.
	if status, _, msg := do(t, http.MethodPut, srv.URL+"/ingest/cam2", bytes.NewReader(data)); status != http.StatusOK {
		t.Fatalf("other stream: %d %q", status, msg)
	}
	<-f.opened // cam2's
	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if s := <-firstStatus; s != http.StatusOK {
		t.Fatalf("first publisher: status %d, want 200", s)
	}
	_, frames, _, _ := p1.snapshot()
	tstest.SameFramesPerTrack(t, frames, tstest.Demux(t, data).Frames)
	if got := testutil.ToFloat64(m.takeovers); got != 0 {
		t.Fatalf("takeovers = %v", got)
	}
}

// With TakeoverDeny, a publisher that started while the stream was not live
// is refused at its first access unit if another one went live meanwhile.
func TestTakeoverDenyAtFirstAccessUnit(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, err := NewPublications(Config{NewPublisher: f.open, Takeover: TakeoverDeny})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := ps.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	const head = 5000 // PAT and PMT, no complete access unit
	late := newBlockingSource(bytes.Clone(data[:head]))
	lateDone := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(t.Context(), "cam1", Source{Body: late, Interrupt: late.interrupt})
		lateDone <- err
	}()
	select {
	case <-late.drained:
	case <-time.After(testDeadline):
		t.Fatal("the late publisher's body was not read")
	}

	first := newBlockingSource(data)
	go func() { _, _ = ps.Ingest(t.Context(), "cam1", Source{Body: first, Interrupt: first.interrupt}) }()
	p1 := f.nextPub(t)
	waitFrame(t, p1)

	late.feed(t, data[head:])
	select {
	case err := <-lateDone:
		if !errors.Is(err, ErrLive) {
			t.Fatalf("late publisher: %v, want ErrLive", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("the late publisher was not refused")
	}
	if _, _, _, closed := p1.snapshot(); closed {
		t.Fatal("the live publisher was closed")
	}
	if pubs, _ := f.snapshot(); len(pubs) != 1 {
		t.Fatalf("%d publishers opened, want 1", len(pubs))
	}
}

func TestParseTakeoverPolicy(t *testing.T) {
	for _, p := range []TakeoverPolicy{TakeoverAllow, TakeoverDeny} {
		if got, err := ParseTakeoverPolicy(p.String()); err != nil || got != p {
			t.Errorf("ParseTakeoverPolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if got, err := ParseTakeoverPolicy(""); err != nil || got != TakeoverAllow {
		t.Errorf(`ParseTakeoverPolicy("") = %v, %v; want the default, allow`, got, err)
	}
	if _, err := ParseTakeoverPolicy("maybe"); err == nil {
		t.Error("ParseTakeoverPolicy(maybe): want an error")
	}
	if _, err := NewPublications(Config{NewPublisher: newFakeFactory().open, Takeover: 7}); err == nil {
		t.Error("NewPublications with takeover policy 7: want an error")
	}
}
