//go:build external

package tests

import (
	"context"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/node"
)

// TestFaultTakeover starts a second publisher of a live stream: the first
// one's ingest ends (409), and the viewer goes on on the same
// PeerConnection, with RTP sequence numbers and timestamps continuous
// across the swap (one frame interval, one Opus packet).
func TestFaultTakeover(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	b := startBroker(t, ctx, broker.Options{WHEP: node.Serve}, "--nats-listen", "", "--data-dir", t.TempDir(),
		"--whep-addr", "127.0.0.1:0", "--ice-udp-addr", "127.0.0.1:0")
	url := "http://" + b.WHEPAddr().String()
	first := liveIngest(t, b, "cam")
	v := playStream(t, ctx, url, "cam")
	v.waitPackets(t, ctx, mimeH264, v.count(mimeH264)+30)

	second := liveIngest(t, b, "cam")
	swapped := time.Now()
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatal("the first publisher's ingest did not end")
	}
	if second.Exited() {
		t.Fatalf("the second publisher ended: %v", second.Err())
	}
	if got := whepMetric(t, "http://"+b.IngestAddr().String(), "whepcast_ingest_takeovers_total"); got != 1 {
		t.Fatalf("takeovers = %v", got)
	}
	v.waitPacketsAfter(t, ctx, mimeH264, swapped, 90)
	v.waitPacketsAfter(t, ctx, mimeOpus, swapped, 100)

	video := checkContinuity(t, track{name: "video", maxStep: 3000}, v.packets(mimeH264))
	// Audio follows the video's alignment at the new epoch (the relay
	// drops the new epoch's audio that comes before its first keyframe):
	// one step may leave a gap, of at most 100 ms; every other step is
	// exactly one 20 ms packet.
	audio := checkContinuity(t, track{name: "audio", audio: true, maxStep: 960 + 4800, nominal: 960}, v.packets(mimeOpus))
	if audio.irregular > 1 {
		t.Fatalf("%d audio steps other than 960", audio.irregular)
	}
	t.Logf("FIGURE takeover_audio_gap_ms=%d", (audio.maxStep-960)/48)
	t.Logf("FIGURE takeover_video_pause_ms=%d", video.maxPause.Milliseconds())
	t.Logf("FIGURE takeover_audio_pause_ms=%d", audio.maxPause.Milliseconds())
	select {
	case <-v.closed:
		t.Fatal("the PeerConnection closed")
	default:
	}
}
