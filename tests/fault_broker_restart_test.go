//go:build external

package tests

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/bus"
)

// brokerRestartBudget is how soon after the ingest resumes on a restarted
// broker its existing viewers must get media again.
const brokerRestartBudget = 2 * time.Second

// TestFaultBrokerRestart restarts the broker (embedded NATS, file storage,
// same data directory and port) under a whep-node with a playing viewer:
// the viewer keeps its PeerConnection and gets media again within
// brokerRestartBudget of the ingest resuming, with no duplicate or
// out-of-order frame.
func TestFaultBrokerRestart(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	natsAddr := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t, "tcp"))
	args := []string{"--nats-listen", natsAddr, "--data-dir", t.TempDir(), "--storage", "file"}
	b1 := startBroker(t, ctx, broker.Options{}, args...)
	url := whepNode(t, nodeConn(t, "--nats-url", "nats://"+natsAddr), nil)
	ingest1 := liveIngest(t, b1, "cam")
	v := playStream(t, ctx, url, "cam")
	v.waitPackets(t, ctx, mimeH264, v.count(mimeH264)+30)

	if err := b1.Shutdown(ctx); err != nil {
		t.Fatalf("broker stop: %v", err)
	}
	stopped := time.Now()
	select {
	case <-ingest1.Done():
	case <-ctx.Done():
		t.Fatal("the ingest did not end with the broker")
	}
	b2 := startBroker(t, ctx, broker.Options{}, args...)
	t.Logf("broker restarted in %v", time.Since(stopped))
	resumed := firstFrame(t, b2.NATSURL(), "cam")
	liveIngest(t, b2, "cam")

	var at time.Time
	select {
	case at = <-resumed:
	case <-ctx.Done():
		t.Fatal("the ingest did not resume")
	}
	first := v.waitPacketsAfter(t, ctx, mimeH264, stopped, 1)
	took := first.Sub(at)
	t.Logf("FIGURE broker_restart_resume_ms=%d (ingest resumed %v after the stop)", took.Milliseconds(), at.Sub(stopped).Round(time.Millisecond))
	if took > brokerRestartBudget {
		t.Fatalf("viewer got media %v after the ingest resumed, budget %v", took, brokerRestartBudget)
	}
	v.waitPacketsAfter(t, ctx, mimeH264, stopped, 90)
	v.waitPacketsAfter(t, ctx, mimeOpus, stopped, 100)
	select {
	case <-v.closed:
		t.Fatal("the PeerConnection closed")
	default:
	}
	// One frame interval between the last frame before and the first
	// after; audio as at a takeover (see TestFaultTakeover).
	checkContinuity(t, track{name: "video", maxStep: 3000}, v.packets(mimeH264))
	audio := checkContinuity(t, track{name: "audio", audio: true, maxStep: 960 + 4800, nominal: 960}, v.packets(mimeOpus))
	if audio.irregular > 1 {
		t.Fatalf("%d audio steps other than 960", audio.irregular)
	}
}

// firstFrame subscribes to the media of stream at url and returns a
// channel that receives the arrival time of the first frame (the ingest
// publishing).
func firstFrame(t *testing.T, url, stream string) <-chan time.Time {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subj, _ := bus.SubjectsFor(stream)
	ch := make(chan time.Time, 1)
	var once sync.Once
	if _, err := nc.Subscribe(subj.All, func(m *nats.Msg) {
		if _, err := strconv.ParseInt(m.Header.Get(bus.HeaderPTS), 10, 64); err == nil {
			once.Do(func() { ch <- time.Now() })
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}
