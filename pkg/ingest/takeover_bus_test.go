package ingest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
)

// On a real bus: random bytes PUT to a live stream get 400, and the live
// publisher's frames go on reaching the bus, all of them, in its epoch.
func TestHTTPNotTSLivePublisherGoesOnOnTheBus(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	nc := natstest.EmbeddedConn(t)
	ps, err := NewPublications(Config{NewPublisher: BusPublishers(nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHTTPHandler(ps, HTTPConfig{}))
	t.Cleanup(srv.Close)

	var (
		mu     sync.Mutex
		frames int
		epochs = map[uint64]bool{}
	)
	got := make(chan struct{}, 1)
	// The live publisher: half of the file, its body left open.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(data[:len(data)/2]) }()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/ingest/cam1", pr)
	if err != nil {
		t.Fatal(err)
	}
	firstStatus := make(chan int, 1)
	go func() {
		resp, err := testClient.Do(req)
		if err != nil {
			firstStatus <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		firstStatus <- resp.StatusCode
	}()
	// Subscribe returns once the stream exists: once the live publisher
	// has published.
	subCtx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	sub, err := bus.Subscribe(subCtx, nc, "cam1", bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if m.Tracks != nil {
			return
		}
		mu.Lock()
		frames++
		epochs[m.Epoch] = true
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return frames, len(epochs)
	}

	select {
	case <-got:
	case <-time.After(testDeadline):
		t.Fatal("no frame of the live publisher on the bus")
	}

	random := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	if status, _, msg := do(t, http.MethodPut, srv.URL+"/ingest/cam1", bytes.NewReader(random)); status != http.StatusBadRequest {
		t.Fatalf("random body: %d %q, want 400", status, msg)
	}

	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if s := <-firstStatus; s != http.StatusOK {
		t.Fatalf("live publisher: status %d, want 200", s)
	}
	deadline := time.After(testDeadline)
	for {
		if n, e := count(); n >= len(want.Frames) {
			if n != len(want.Frames) || e != 1 {
				t.Fatalf("%d frames in %d epochs on the bus, want %d in one", n, e, len(want.Frames))
			}
			break
		}
		select {
		case <-got:
		case <-deadline:
			n, _ := count()
			t.Fatalf("%d of %d frames on the bus", n, len(want.Frames))
		}
	}
}
