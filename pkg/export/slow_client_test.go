//go:build unix

package export

import (
	"context"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// ingestLoop publishes fixture n times back to back as one epoch of stream
// name, each time with its timestamps moved past the previous one's.
func ingestLoop(t *testing.T, nc *nats.Conn, name, fixture string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	d := tstest.Demux(t, tstest.Read(t, fixture))
	span := d.Frames[len(d.Frames)-1].PTS - d.Frames[0].PTS + 3000
	pub, err := bus.NewPublisher(ctx, nc, name, bus.PublisherConfig{Stream: bus.StreamConfig{MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Announce(ctx, d.Announcements[0]); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for _, f := range d.Frames {
			f.PTS += int64(i) * span
			f.DTS += int64(i) * span
			if err := pub.Publish(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStalledClientIsDroppedWithoutHoldingOthers: a client that reads
// nothing of a large export keeps its slot only until the write timeout,
// and exports of other clients run meanwhile.
func TestStalledClientIsDroppedWithoutHoldingOthers(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	ingestLoop(t, nc, "big", "av.ts", 30) // about 9 MB of TS
	ingest(t, nc, "small", "av.ts")
	h, srv := exportServer(t, nc, Config{MaxExports: 2, WriteTimeout: 500 * time.Millisecond}, nil)

	// The stalled client: a small receive buffer, and no read.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	stalled := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/export/big.ts?from=-1h", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stalled.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stalled client: status %d", resp.StatusCode)
	}
	if len(h.slots) != 1 {
		t.Fatalf("%d exports in progress, want the stalled one", len(h.slots))
	}

	// Another client is served while the first one stalls.
	got, body := get(t, srv.URL+"/export/small.ts?from=-1h", nil)
	if got.StatusCode != http.StatusOK {
		t.Fatalf("other client: status %d: %s", got.StatusCode, body)
	}
	if n := len(tstest.Demux(t, body).Kind(tsframes.KindVideo)); n != 180 {
		t.Errorf("other client: %d video frames, want 180", n)
	}

	// The stalled export ends at its write timeout and frees its slot.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(h.slots) != 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the stalled export still holds its slot")
		}
	}
}
