package bus

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
)

func TestWatcherWaitCancelAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	w, err := WatchCatalog(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := w.Wait(wctx, "x")
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("Wait ignored cancel")
	}
	if _, err := w.Wait(ctx, "bad name"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Wait(bad name): %v, want ErrInvalidName", err)
	}

	// Close wakes waiters and closes subscriber channels.
	go func() {
		_, err := w.Wait(ctx, "y")
		errc <- err
	}()
	ch, cancelSub := w.Subscribe()
	defer cancelSub()
	w.Close()
	w.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait after Close: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not wake Wait")
	}
	if _, ok := <-ch; ok {
		t.Fatal("Subscribe channel open after Close")
	}
}

func TestWatcherSlowSubscriberDropsOldest(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	w, err := WatchCatalog(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ch, cancelSub := w.Subscribe()
	cat, err := OpenCatalog(ctx, newJS(t, nc), 1)
	if err != nil {
		t.Fatal(err)
	}
	// One key per change: the bucket keeps one revision per key, so a
	// watch may skip revisions overwritten before delivery.
	const n = WatcherBuffer + 10
	for i := 1; i <= n; i++ {
		if err := cat.put(ctx, CatalogEntry{Stream: "s" + strconv.Itoa(i), Epoch: uint64(i), State: StateLive}); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, ctx, "last change seen", func() bool {
		_, ok := w.Get("s" + strconv.Itoa(n))
		return ok
	})
	if got := w.Dropped(); got != n-WatcherBuffer {
		t.Fatalf("Dropped() = %d, want %d", got, n-WatcherBuffer)
	}
	// The channel holds the newest WatcherBuffer changes, in order.
	for i := n - WatcherBuffer + 1; i <= n; i++ {
		if e := <-ch; e.Epoch != uint64(i) {
			t.Fatalf("change epoch %d, want %d", e.Epoch, i)
		}
	}
	cancelSub()
	cancelSub()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	// An older epoch does not overwrite a newer one.
	if err := cat.put(ctx, CatalogEntry{Stream: "s5", Epoch: 4, State: StateEnded}); !errors.Is(err, errSuperseded) {
		t.Fatalf("put of an older epoch: %v, want errSuperseded", err)
	}
}

func TestWatcherResyncsAfterReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := natstest.Embedded(t, embedded.Config{DataDir: dir})
	url := srv.ClientURL()
	_, portStr, _ := net.SplitHostPort(url[len("nats://"):])
	port, _ := strconv.Atoi(portStr)

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w, err := WatchCatalog(ctx, nc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ch, cancelSub := w.Subscribe()
	defer cancelSub()

	// While the watcher is disconnected, another client changes the
	// catalog: it must catch up after the reconnect.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	running := natstest.Embedded(t, embedded.Config{DataDir: dir, Host: "127.0.0.1"})
	other, err := nats.Connect(running.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cat, err := OpenCatalog(ctx, newJS(t, other), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.put(ctx, CatalogEntry{Stream: "offline", Epoch: 7, State: StateLive,
		Tracks: Announcement{Stream: "offline", Epoch: 7, Tracks: h264Opus.Tracks, Video: 256}}); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := running.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Embedded(t, embedded.Config{Port: port, DataDir: dir})
	e := nextChange(t, ctx, ch, "entry written while disconnected", func(e CatalogEntry) bool { return e.Stream == "offline" })
	if e.Epoch != 7 || e.State != StateLive {
		t.Fatalf("entry = %+v", e)
	}
	if got, err := w.Wait(ctx, "offline"); err != nil || got.Epoch != 7 {
		t.Fatalf("Wait = %+v, %v", got, err)
	}
}

// The KV watch must outlive the context WatchCatalog was given: that context
// only bounds the initial load. (nats.go closes a watch when its context
// ends; a watch tied to it made the Watcher reload in a hot loop.)
func TestWatcherOutlivesStartContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	startCtx, cancelStart := context.WithCancel(ctx)
	w, err := WatchCatalog(startCtx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cancelStart()

	cat, err := OpenCatalog(ctx, newJS(t, nc), 1)
	if err != nil {
		t.Fatal(err)
	}
	ch, cancelSub := w.Subscribe()
	defer cancelSub()
	for i := 1; i <= 3; i++ {
		name := "late" + strconv.Itoa(i)
		if err := cat.put(ctx, CatalogEntry{Stream: name, Epoch: uint64(i), State: StateLive}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-ch:
			if e.Stream != name {
				t.Fatalf("change for %q, want %q", e.Stream, name)
			}
		case <-ctx.Done():
			t.Fatalf("no change delivered for %q", name)
		}
	}
	if got := w.loads.Load(); got != 1 {
		t.Fatalf("catalog loaded %d times, want 1 (the watch was restarted)", got)
	}
}
