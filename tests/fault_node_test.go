//go:build external

package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/pkg/broker"
)

// nodeFailoverBudget is how soon a viewer whose node died must get a
// keyframe from another node after it POSTs there.
const nodeFailoverBudget = time.Second

// TestFaultNodeKilled kills (SIGKILL) the whep-node process a viewer plays
// from: the viewer POSTs its offer to another node and has a complete
// keyframe within nodeFailoverBudget.
func TestFaultNodeKilled(t *testing.T) {
	whepLeakCheck(t)
	_, nodeBin := e2eBin.get(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	b := startBroker(t, ctx, broker.Options{}, "--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	httpPort, icePort := proctest.FreePort(t, "tcp"), proctest.FreePort(t, "udp")
	a := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	procA := e2eStart(t, "whep-node A", nodeBin,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--ice-udp-addr", fmt.Sprintf("127.0.0.1:%d", icePort),
		"--nats-url", b.NATSURL())
	procA.WaitHTTP(t, ctx, a+"/readyz", "ready\n")
	nodeB := whepNode(t, nodeConn(t, "--nats-url", b.NATSURL()), nil)
	liveIngest(t, b, "cam")

	v1 := playStream(t, ctx, a, "cam")
	v1.waitPackets(t, ctx, mimeH264, v1.count(mimeH264)+30)
	procA.Kill()
	killed := time.Now()

	v2 := newRTPViewer(t)
	whepPlay(t, ctx, nodeB, "cam", v2.whepClient)
	key := v2.waitKeyframe(t, ctx, killed)
	took := key.Sub(killed)
	t.Logf("FIGURE node_failover_keyframe_ms=%d", took.Milliseconds())
	if took > nodeFailoverBudget {
		t.Fatalf("first keyframe from node B %v after the POST, budget %v", took, nodeFailoverBudget)
	}
	v2.waitPackets(t, ctx, mimeH264, v2.count(mimeH264)+60)
	if !unitHasIDR(v2.packets(mimeH264)) {
		t.Fatal("node B's first video frame is not a keyframe")
	}
	checkContinuity(t, track{name: "video from B", maxStep: 9000}, v2.packets(mimeH264))
	checkContinuity(t, track{name: "audio from B", audio: true, maxStep: 960}, v2.packets(mimeOpus))
}
