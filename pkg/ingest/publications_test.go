package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
)

func TestIngestPublishesEverything(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	f := newFakeFactory()
	ps, m := newTestPublications(t, f)

	sum, err := ps.Ingest(t.Context(), "cam1", Source{Kind: "test", Remote: "192.0.2.7:51234", Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	pubs, events := f.snapshot()
	if len(pubs) != 1 {
		t.Fatalf("%d publishers, want 1", len(pubs))
	}
	p := pubs[0]
	anns, frames, stats, closed := p.snapshot()
	if !closed {
		t.Fatal("publisher not closed")
	}
	if fmt.Sprint(anns) != fmt.Sprint(want.Announcements) {
		t.Fatalf("announcements %v, want %v", anns, want.Announcements)
	}
	tstest.SameFramesPerTrack(t, frames, want.Frames)

	var keys uint64
	for _, fr := range want.Frames {
		if fr.Key {
			keys++
		}
	}
	wantStats := bus.IngestStats{Bytes: uint64(len(data)), Frames: uint64(len(want.Frames)), Keyframes: keys, Protocol: "test", Publisher: "192.0.2.7:51234"}
	if len(stats) == 0 || stats[len(stats)-1] != wantStats {
		t.Fatalf("last ingest stats %+v, want %+v", stats, wantStats)
	}
	if sum.Stream != "cam1" || sum.Epoch != p.epoch || sum.Bytes != wantStats.Bytes || sum.Frames != wantStats.Frames || sum.Keyframes != keys {
		t.Fatalf("summary %+v, want %+v epoch %d", sum, wantStats, p.epoch)
	}
	if want := []string{fmt.Sprintf("open cam1 %d", p.epoch), fmt.Sprintf("close cam1 %d", p.epoch)}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	if !strings.Contains(sum.String(), fmt.Sprintf("stream=cam1 epoch=%d bytes=%d frames=%d keyframes=%d decode_errors=0 publish_errors=0", p.epoch, len(data), len(want.Frames), keys)) {
		t.Fatalf("summary string %q", sum)
	}

	for name, c := range map[string]struct {
		got  float64
		want float64
	}{
		"bytes":        {testutil.ToFloat64(m.bytes.WithLabelValues("cam1")), float64(len(data))},
		"frames":       {testutil.ToFloat64(m.frames.WithLabelValues("cam1")), float64(len(want.Frames))},
		"keyframes":    {testutil.ToFloat64(m.keyframes.WithLabelValues("cam1")), float64(keys)},
		"publications": {testutil.ToFloat64(m.publications.WithLabelValues("cam1")), 0},
		"takeovers":    {testutil.ToFloat64(m.takeovers), 0},
		"pub errors":   {testutil.ToFloat64(m.publishErrors.WithLabelValues("cam1")), 0},
	} {
		if c.got != c.want {
			t.Errorf("metric %s = %v, want %v", name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency series: %d", n)
	}
	if len(ps.Live()) != 0 {
		t.Fatalf("publications left: %v", ps.Live())
	}
}

func TestIngestRejectsBadName(t *testing.T) {
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	for _, name := range []string{"", "a.b", "a/b", "a b", strings.Repeat("x", 65), "ü"} {
		_, err := ps.Ingest(t.Context(), name, Source{Body: bytes.NewReader(nil)})
		if !errors.Is(err, bus.ErrInvalidName) {
			t.Errorf("%q: err = %v, want ErrInvalidName", name, err)
		}
	}
	if pubs, _ := f.snapshot(); len(pubs) != 0 {
		t.Fatalf("%d publishers opened", len(pubs))
	}
}

func TestIngestTakeover(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, m := newTestPublications(t, f)
	ctx := t.Context()

	first := newBlockingSource(data[:len(data)/2])
	firstDone := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(ctx, "cam1", Source{Kind: "first", Body: first, Interrupt: first.interrupt})
		firstDone <- err
	}()
	p1 := f.nextPub(t)
	<-p1.got // the first publication is publishing
	if s := ps.Live(); len(s) != 1 || s[0].Epoch != p1.epoch || s[0].Kind != "first" {
		t.Fatalf("publications %+v", s)
	}

	sum, err := ps.Ingest(ctx, "cam1", Source{Kind: "second", Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-firstDone:
		if !errors.Is(err, ErrTakenOver) {
			t.Fatalf("first publication: %v, want ErrTakenOver", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("first publication did not end")
	}
	pubs, events := f.snapshot()
	if len(pubs) != 2 {
		t.Fatalf("%d publishers", len(pubs))
	}
	p2 := pubs[1]
	if p2.epoch <= p1.epoch || sum.Epoch != p2.epoch {
		t.Fatalf("epochs %d then %d (summary %d): want increasing", p1.epoch, p2.epoch, sum.Epoch)
	}
	want := []string{
		fmt.Sprintf("open cam1 %d", p1.epoch),
		fmt.Sprintf("close cam1 %d", p1.epoch),
		fmt.Sprintf("open cam1 %d", p2.epoch),
		fmt.Sprintf("close cam1 %d", p2.epoch),
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	if got := testutil.ToFloat64(m.takeovers); got != 1 {
		t.Fatalf("takeovers = %v", got)
	}
	_, frames, _, _ := p2.snapshot()
	tstest.SameFramesPerTrack(t, frames, tstest.Demux(t, data).Frames)
}

func TestIngestOtherStreamsIndependent(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, m := newTestPublications(t, f)
	ctx := t.Context()

	a := newBlockingSource(data)
	aDone := make(chan error, 1)
	go func() {
		_, err := ps.Ingest(ctx, "a", Source{Body: a, Interrupt: a.interrupt})
		aDone <- err
	}()
	<-f.nextPub(t).got
	if _, err := ps.Ingest(ctx, "b", Source{Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if s := ps.Live(); len(s) != 1 || s[0].Stream != "a" {
		t.Fatalf("publications %+v, want only a", s)
	}
	if got := testutil.ToFloat64(m.publications.WithLabelValues("a")); got != 1 {
		t.Fatalf("publications{a} = %v", got)
	}
	sctx, cancel := context.WithTimeout(ctx, testDeadline)
	defer cancel()
	if err := ps.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; !errors.Is(err, ErrClosed) {
		t.Fatalf("a: %v, want ErrClosed", err)
	}
	if _, err := ps.Ingest(ctx, "c", Source{Body: bytes.NewReader(data)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Shutdown: %v, want ErrClosed", err)
	}
	if got := testutil.ToFloat64(m.takeovers); got != 0 {
		t.Fatalf("takeovers = %v", got)
	}
}

func TestIngestErrors(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	ctx := t.Context()

	t.Run("publisher unavailable", func(t *testing.T) {
		f := newFakeFactory()
		f.openErr = errors.New("no jetstream")
		ps, _ := newTestPublications(t, f)
		_, err := ps.Ingest(ctx, "cam1", Source{Body: bytes.NewReader(data)})
		if !errors.Is(err, ErrPublisher) || StatusCode(err) != 503 {
			t.Fatalf("err = %v (status %d), want ErrPublisher 503", err, StatusCode(err))
		}
	})
	t.Run("publish errors are counted", func(t *testing.T) {
		f := newFakeFactory()
		f.publishErr = errors.New("timeout")
		ps, m := newTestPublications(t, f)
		sum, err := ps.Ingest(ctx, "cam1", Source{Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		want := tstest.Demux(t, data)
		if sum.PublishErrors != uint64(len(want.Frames)) || sum.Frames != uint64(len(want.Frames)) {
			t.Fatalf("summary %+v, want %d publish errors", sum, len(want.Frames))
		}
		if got := testutil.ToFloat64(m.publishErrors.WithLabelValues("cam1")); got != float64(len(want.Frames)) {
			t.Fatalf("publish errors metric %v", got)
		}
	})
	t.Run("source fails", func(t *testing.T) {
		f := newFakeFactory()
		ps, _ := newTestPublications(t, f)
		src := newBlockingSource(data[:20000])
		close(src.eof)
		_, err := ps.Ingest(ctx, "cam1", Source{Body: src})
		if !errors.Is(err, ErrSource) || StatusCode(err) != 400 {
			t.Fatalf("err = %v, want ErrSource 400", err)
		}
		if pubs, _ := f.snapshot(); len(pubs) != 1 || !pubs[0].closed {
			t.Fatal("publisher not closed after a source failure")
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		f := newFakeFactory()
		ps, _ := newTestPublications(t, f)
		cctx, cancel := context.WithCancel(ctx)
		src := newBlockingSource(data[:20000])
		done := make(chan error, 1)
		go func() {
			_, err := ps.Ingest(cctx, "cam1", Source{Body: src, Interrupt: src.interrupt})
			done <- err
		}()
		<-f.nextPub(t).got
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestStatusCode(t *testing.T) {
	for err, want := range map[error]int{
		nil:                                     200,
		fmt.Errorf("x: %w", bus.ErrInvalidName): 400,
		ErrUnauthorized:                         401,
		ErrTakenOver:                            409,
		ErrClosed:                               503,
		fmt.Errorf("%w: x", ErrPublisher):       503,
		fmt.Errorf("%w: x", ErrStream):          422,
		fmt.Errorf("%w: x", ErrSource):          400,
		errors.New("other"):                     500,
	} {
		if got := StatusCode(err); got != want {
			t.Errorf("StatusCode(%v) = %d, want %d", err, got, want)
		}
	}
}
