package bus

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream layouts that docs/bus.md (Storage) compares, measured on a
// store of layoutStore bytes: what JetStream sizes from the free disk when
// it starts (a store size is not something natstest.Embedded sets, hence
// the server started here).
const (
	layoutStore   = 8 << 20
	layoutPayload = 16 << 10
)

// startStore starts a nats-server on dir whose JetStream store is maxStore
// bytes, connected in process. stop shuts it down (also at the end of the
// test).
func startStore(t *testing.T, dir string, maxStore int64) (nc *nats.Conn, stop func()) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, JetStreamMaxStore: maxStore, DontListen: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server not ready")
	}
	nc, err = nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			nc.Close()
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}
	t.Cleanup(stop)
	return nc, stop
}

func layoutStream(name string, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: name, Subjects: []string{"s." + name + ".>"}, MaxBytes: maxBytes, Discard: jetstream.DiscardOld, MaxAge: time.Minute}
}

// Per-stream streams with a byte limit: each reserves it; the store is
// full of reservations after store/limit streams, however few bytes they
// hold (issue 12: 226 names of 256 MiB on a 56 GiB disk).
func TestLayoutPerStreamLimitsReserveTheStore(t *testing.T) {
	nc, _ := startStore(t, t.TempDir(), layoutStore)
	js := newJS(t, nc)
	n := 0
	var err error
	for ; n < 100; n++ {
		if _, err = js.CreateStream(t.Context(), layoutStream(fmt.Sprint("S", n), 1<<20)); err != nil {
			break
		}
	}
	if n != layoutStore/(1<<20) || !isStorageError(err) {
		t.Fatalf("created %d streams of 1 MiB on an 8 MiB store, then %v; want 8, then insufficient storage", n, err)
	}
}

// Per-stream streams without a byte limit reserve nothing: any number of
// them; the store is then a limit of the bytes held, and when they fill it
// every stream's writes are refused, a live one's included (the budget
// admission keeps the store from filling).
func TestLayoutPerStreamWithoutLimitsReserveNothing(t *testing.T) {
	nc, _ := startStore(t, t.TempDir(), layoutStore)
	js := newJS(t, nc)
	for n := range 300 {
		if _, err := js.CreateStream(t.Context(), layoutStream(fmt.Sprint("S", n), -1)); err != nil {
			t.Fatalf("stream %d without a byte limit: %v", n, err)
		}
	}
	payload := make([]byte, layoutPayload)
	i := 0
	var err error
	for ; i < 2*layoutStore/layoutPayload; i++ {
		if _, err = js.Publish(t.Context(), "s.S0.x", payload); err != nil {
			break
		}
	}
	_, err2 := js.Publish(t.Context(), "s.S1.x", payload)
	if !isStorageError(err) || !isStorageError(err2) {
		t.Fatalf("full store: %v, then on another stream %v; want both refused for lack of storage", err, err2)
	}
	t.Logf("300 streams without byte limits on an 8 MiB store; %d writes of 16 KiB, then every stream refused: %v", i, err)
}

// One shared stream with a byte limit: bounded and never refused (the
// oldest messages of any stream go first), but a stream's messages are no
// longer numbered contiguously, which the Subscription's loss detection
// needs, and removing a stream is a purge of its subjects.
func TestLayoutSharedStreamDiscardsOldest(t *testing.T) {
	nc, _ := startStore(t, t.TempDir(), layoutStore)
	js := newJS(t, nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ALL", Subjects: []string{"s.>"}, MaxBytes: layoutStore / 2, Discard: jetstream.DiscardOld, MaxAge: time.Minute}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, layoutPayload)
	for i := range 2 * layoutStore / layoutPayload {
		if _, err := js.Publish(t.Context(), fmt.Sprint("s.", i%300, ".x"), payload); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// A restart with a smaller store (less free disk) keeps existing streams
// writable, but JetStream refuses any update of them while the byte
// reservations exceed the store (issue 12: `ref` refused after a restart
// with 3 GiB less free disk, as the broker updated its stream). A
// Publisher keeps such a stream as it is and ingests.
func TestPublisherKeepsExistingStreamAfterRestartWithSmallerStore(t *testing.T) {
	dir := t.TempDir()
	nc, stop := startStore(t, dir, layoutStore)
	old := StreamConfig{MaxAge: time.Minute, MaxBytes: 1 << 20} // the former per-stream reservation
	for n := range 6 {
		p, err := NewPublisher(t.Context(), nc, fmt.Sprint("cam", n), PublisherConfig{Stream: old})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	nc, _ = startStore(t, dir, layoutStore/2)
	js := newJS(t, nc)
	probe := layoutStream("probe", -1)
	if _, err := js.CreateStream(t.Context(), probe); !isStorageError(err) {
		t.Fatalf("new stream with 6 MiB reserved on a 4 MiB store: %v, want refused for lack of storage", err)
	}
	for n := range 6 {
		name := fmt.Sprint("cam", n)
		// Same settings (no update needed), and new ones (an update
		// that JetStream refuses).
		for _, cfg := range []StreamConfig{old, {MaxAge: 2 * time.Minute, MaxBytes: 2 << 20}} {
			p, err := NewPublisher(t.Context(), nc, name, PublisherConfig{Stream: cfg})
			if err != nil {
				t.Fatalf("existing stream %s after a restart with a smaller store: %v", name, err)
			}
			if err := p.Announce(t.Context(), h264Opus); err != nil {
				t.Fatal(err)
			}
			if err := p.Publish(t.Context(), videoFrame(0, true, []byte{0, 0, 0, 1, 0x65, 1})); err != nil {
				t.Fatal(err)
			}
			if err := p.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.Acked < 2 || st.Errors != 0 {
				t.Fatalf("%s after the restart: %+v, want its messages stored", name, st)
			}
		}
	}
}

// A new stream refused for lack of storage is ErrInsufficientStorage.
func TestNewPublisherReportsInsufficientStorage(t *testing.T) {
	nc, _ := startStore(t, t.TempDir(), layoutStore)
	_, err := NewPublisher(t.Context(), nc, "big", PublisherConfig{Stream: StreamConfig{MaxBytes: 2 * layoutStore}})
	if !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("NewPublisher reserving more than the store: %v, want ErrInsufficientStorage", err)
	}
}
