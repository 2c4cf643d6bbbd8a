//go:build external

package tests

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/whepcast/whepcast/internal/rtptest"
)

// The join stress test against the real binaries (issue 16).
const (
	// stressWaves of stressPerWave joins: the joins of a wave follow each
	// other at random gaps of up to stressMaxGap (so they land at random
	// positions of gop4.ts's 4 s GOP, several viewers connecting at once),
	// and each plays until stressPlay after the wave's last join.
	stressWaves   = 4
	stressPerWave = 8
	stressMaxGap  = 500 * time.Millisecond
	stressPlay    = 2500 * time.Millisecond
	// stressMaxStarved bounds the joins whose own client socket overflowed
	// (the test process starved of CPU on a loaded machine), whose losses
	// are the client's, not the node's.
	stressMaxStarved = 2
)

// TestE2EJoinStress runs the broker and a whep-node (real binaries, default
// flags: --start gop, the replay paced at --replay-rate 4), publishes
// gop4.ts looped in real time (ffmpeg -re) and joins 32 pion viewers (default
// interceptors, NACK included, SRTP replay protection on) at random
// positions of the GOP, eight at a time. Each viewer must get, from its
// first packet on, every RTP sequence number exactly once and in order,
// timestamps that step forward (a frame at most, or the pause after the
// replayed keyframe), and complete access units, in video and in audio; its
// video starts with a keyframe. The only losses tolerated are those of at
// most two joins whose own socket overflowed (Linux reports it); the audio
// timestamp that ffmpeg repeats where the looped file wraps is logged, not
// failed. About 20 s.
func TestE2EJoinStress(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	stack.ingest(t, "stress", "gop4.ts", true)
	stack.waitLive(t, ctx, "stress")
	rng := rand.New(rand.NewPCG(16, uint64(time.Now().UnixNano())))
	started := time.Now()
	starved, joins, repeats := 0, 0, 0
	for wave := range stressWaves {
		var viewers []*rtpViewer
		var ports []int
		for range stressPerWave {
			gap := time.Duration(rng.Int64N(int64(stressMaxGap)))
			e2eWaitUntil(t, ctx, time.Now().Add(gap))
			v := newRTPViewer(t)
			whepPlay(t, ctx, stack.nodeURL, "stress", v.whepClient)
			viewers = append(viewers, v)
			pair, err := v.pc.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("selected candidate pair: %v, %v", pair, err)
			}
			ports = append(ports, int(pair.Local.Port))
		}
		e2eWaitUntil(t, ctx, time.Now().Add(stressPlay))
		for i, v := range viewers {
			drops, _ := rtptest.SocketDrops(ports[i])
			_ = v.pc.Close()
			joins++
			video, audio := v.packets(mimeH264), v.packets(mimeOpus)
			if len(video) == 0 || len(audio) == 0 {
				t.Errorf("wave %d, join %d: %d video and %d audio packets", wave, i, len(video), len(audio))
				continue
			}
			if !startsWithIDR(video) {
				t.Errorf("wave %d, join %d: the first video access unit (seq %d) is not a keyframe", wave, i, video[0].seq)
			}
			// The pause after the replayed keyframe steps the video
			// timestamps by up to 250 ms (22,500 ticks).
			cv, ca := rtptest.Track(headers(video), true, 22_500+3000), rtptest.Track(headers(audio), false, 960)
			// ffmpeg's -stream_loop repeats an audio timestamp where gop4.ts
			// wraps (its audio is 6.5 ms longer than its video): every viewer
			// present then gets it, joined or not. Those are counted apart.
			if z := zeroSteps(audio, started); z != "" && ca.BadTS == strings.Count(z, "seq ") {
				t.Logf("wave %d, join %d: audio timestamp repeated (the source's loop): %s", wave, i, z)
				repeats += ca.BadTS
				ca.BadTS = 0
			}
			if cv.Clean() && ca.Clean() {
				continue
			}
			if drops > 0 && cv.Late == 0 && cv.Duplicated == 0 && ca.Late == 0 && ca.Duplicated == 0 {
				starved++
				t.Logf("wave %d, join %d: its socket dropped %d datagrams (a starved client): video %v; audio %v", wave, i, drops, cv, ca)
				continue
			}
			t.Errorf("wave %d, join %d (socket drops %d): video %v; audio %v (largest audio step %d)", wave, i, drops, cv, ca, maxStep(audio))
		}
	}
	t.Logf("FIGURE join_stress_joins=%d join_stress_starved=%d join_stress_seconds=%.1f (audio timestamps repeated at the source's loop: %d)",
		joins, starved, time.Since(started).Seconds(), repeats)
	if starved > stressMaxStarved {
		t.Errorf("%d joins lost packets in their own socket, want at most %d", starved, stressMaxStarved)
	}
}

// headers returns the RTP headers of pkts that rtptest checks.
func headers(pkts []rtpPacket) []rtp.Header {
	h := make([]rtp.Header, len(pkts))
	for i, p := range pkts {
		h[i] = rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker}
	}
	return h
}

// startsWithIDR reports whether the first access unit of pkts (the packets
// of its timestamp) carries an IDR picture.
func startsWithIDR(pkts []rtpPacket) bool {
	for _, p := range pkts {
		if p.ts != pkts[0].ts {
			return false
		}
		if p.idr {
			return true
		}
	}
	return false
}

// maxStep returns the largest timestamp step between consecutive pkts.
func maxStep(pkts []rtpPacket) uint32 {
	var m uint32
	for i := 1; i < len(pkts); i++ {
		m = max(m, pkts[i].ts-pkts[i-1].ts)
	}
	return m
}

// zeroSteps describes the packets of pkts whose timestamp repeats the
// previous one's.
func zeroSteps(pkts []rtpPacket, since time.Time) string {
	var b []string
	for i := 1; i < len(pkts); i++ {
		if pkts[i].ts == pkts[i-1].ts {
			b = append(b, fmt.Sprintf("seq %d ts %d at +%v", pkts[i].seq, pkts[i].ts, pkts[i].at.Sub(since).Round(time.Millisecond)))
		}
	}
	return strings.Join(b, ", ")
}
