package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// nextChange reads changes until one satisfies cond.
func nextChange(t *testing.T, ctx context.Context, ch <-chan CatalogEntry, what string, cond func(CatalogEntry) bool) CatalogEntry {
	t.Helper()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("waiting for %s: channel closed", what)
			}
			if cond(e) {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

func TestCatalogLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)

	// The node starts first: it creates the bucket.
	w, err := WatchCatalog(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	changes, cancelChanges := w.Subscribe()
	defer cancelChanges()

	waited := make(chan CatalogEntry, 1)
	waitErr := make(chan error, 1)
	go func() {
		e, err := w.Wait(ctx, "cam1")
		waitErr <- err
		waited <- e
	}()

	p := newPublisher(t, ctx, nc, "cam1", PublisherConfig{CatalogRefresh: 50 * time.Millisecond})
	select {
	case err := <-waitErr:
		t.Fatalf("Wait returned before Announce: %v", err)
	default:
	}
	if _, ok := w.Get("cam1"); ok {
		t.Fatal("entry exists before Announce")
	}

	ann := tsframes.Announcement{Tracks: append([]tsframes.Track(nil), h264Opus.Tracks...)}
	announced := time.Now()
	if err := p.Announce(ctx, ann); err != nil {
		t.Fatal(err)
	}
	var e CatalogEntry
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		e = <-waited
	case <-ctx.Done():
		t.Fatal("Wait did not wake up after Announce")
	}
	if d := time.Since(announced); d > 3*time.Second {
		t.Fatalf("Wait woke %v after Announce", d)
	}
	if e.Stream != "cam1" || e.Epoch != p.Epoch() || e.State != StateLive || e.Tracks.Video != 256 ||
		e.Tracks.Audio != 257 || len(e.Tracks.Tracks) != 2 || e.Started.IsZero() {
		t.Fatalf("Wait entry = %+v", e)
	}
	// Already live: at once.
	if e2, err := w.Wait(ctx, "cam1"); err != nil || e2.Epoch != e.Epoch {
		t.Fatalf("second Wait = %+v, %v", e2, err)
	}
	nextChange(t, ctx, changes, "live entry", func(e CatalogEntry) bool { return e.State == StateLive })
	if live := w.Live(); len(live) != 1 || live[0].Stream != "cam1" {
		t.Fatalf("Live() = %+v", live)
	}

	// Stats appear on the next refresh.
	p.SetIngestStats(IngestStats{Bytes: 1000, Frames: 10, Keyframes: 1})
	nextChange(t, ctx, changes, "refreshed stats", func(e CatalogEntry) bool {
		return e.Stats.Frames == 10 && e.Stats.Bytes == 1000 && e.Stats.Keyframes == 1 && e.State == StateLive
	})

	js := newJS(t, nc)
	cat, err := OpenCatalog(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cat.Get(ctx, "cam1")
	if err != nil || got.State != StateLive || got.Epoch != p.Epoch() {
		t.Fatalf("Catalog.Get = %+v, %v", got, err)
	}
	if _, err := cat.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Catalog.Get(nope): %v, want ErrNotFound", err)
	}
	if _, err := cat.Get(ctx, "a.b"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Catalog.Get(a.b): %v, want ErrInvalidName", err)
	}

	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ended := nextChange(t, ctx, changes, "ended entry", func(e CatalogEntry) bool { return e.State == StateEnded })
	if ended.Epoch != p.Epoch() {
		t.Fatalf("ended entry epoch %d, want %d", ended.Epoch, p.Epoch())
	}
	if e, ok := w.Get("cam1"); !ok || e.State != StateEnded {
		t.Fatalf("Get after Shutdown = %+v, %v", e, ok)
	}
	if live := w.Live(); len(live) != 0 {
		t.Fatalf("Live() after Shutdown = %+v", live)
	}
	list, err := cat.List(ctx)
	if err != nil || len(list) != 1 || list[0].State != StateEnded {
		t.Fatalf("List = %+v, %v", list, err)
	}
	// An ended entry is not waited for as live.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := w.Wait(cctx, "cam1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on an ended stream: %v, want DeadlineExceeded", err)
	}
}
