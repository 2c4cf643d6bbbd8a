//go:build external

package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Issue 16: a viewer joining mid-GOP gets the keyframe at once and the rest
// of the GOP paced at relay.DefaultReplayRate times the stream's bitrate, so
// that a real access link carries the replay without losses.

// joinLinkQueue is the access link's queue in TestJoinThroughLink.
const joinLinkQueue = 50 * time.Millisecond

// TestJoinThroughLink joins a ~2 Mb/s 640x360 stream (H.264 at 30 fps and
// Opus, encoded by ffmpeg for the test, looped in real time) three quarters
// into its GOP, through a userspace access link (linkEmulator) with a 50 ms
// queue, for GOPs of 2 s and 4 s, replay rates of 2, 4 (the default) and 8,
// and links of 5, 10 and 20 Mb/s. At the default rate on links of 10 Mb/s
// and more, and on links of 1.5 times the replay's pace (linkJoin.checked),
// the viewer loses nothing (the link drops nothing; its video and audio
// sequence numbers have no gap, repeat or reordering) and its first frame
// arrives within one keyframe's transmission time at the link's rate (plus
// the queue and 100 ms of slack) after the connection; on slower links the
// figures are only logged. The time
// to reach the live edge (relay.ViewerStats.CatchUp) is logged as FIGURE
// lines (docs/benchmarks.md, "Join through an access link").
func TestJoinThroughLink(t *testing.T) {
	whepLeakCheck(t)
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is missing (%v): apt-get install -y ffmpeg", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, gop := range []int{2, 4} {
		t.Run(fmt.Sprintf("gop%ds", gop), func(t *testing.T) {
			data := joinFixture(t, ctx, ffmpeg, gop)
			rec := tstest.Demux(t, data)
			gopFrames, keyBytes, bitrate := fixtureGOP(rec)
			t.Logf("fixture: GOP %d frames, largest keyframe %d bytes, %.2f Mb/s", gopFrames, keyBytes, bitrate/1e6)
			connect := whepBus(t)
			stream := fmt.Sprintf("join%d", gop)
			pub := loopPublishTS(t, connect(), stream, stream+".ts", data)
			select {
			case <-pub.announced:
			case <-ctx.Done():
				t.Fatal("the stream was not announced")
			}
			for _, replay := range []float64{2, relay.DefaultReplayRate, 8} {
				node := startSlowNode(t, connect(), 0, 0, replay)
				for _, rate := range []int64{5_000_000, 10_000_000, 20_000_000} {
					j := linkJoin{gop: gop, gopFrames: gopFrames, keyBytes: keyBytes, bitrate: bitrate, replay: replay, rate: rate}
					j.run(t, ctx, node, pub, stream)
				}
			}
		})
	}
}

// linkJoin is one join of TestJoinThroughLink.
type linkJoin struct {
	gop       int     // seconds
	gopFrames int     // frames
	keyBytes  int     // the fixture's largest keyframe
	bitrate   float64 // the fixture's video, b/s
	replay    float64 // the node's replay rate
	rate      int64   // the link's, b/s
}

// checked tells whether the join must lose nothing: on links of 10 Mb/s
// and more at the default replay rate (the case), and on links of
// at least 1.5 times the replay's pace.
func (j linkJoin) checked() bool {
	return j.replay == relay.DefaultReplayRate && j.rate >= 10_000_000 || float64(j.rate) >= 1.5*j.replay*j.bitrate
}

// run joins stream on node through a link of j.rate b/s once the publisher
// is three quarters into a GOP, and checks and logs the join.
func (j linkJoin) run(t *testing.T, ctx context.Context, node *slowNode, pub *whepPublisher, stream string) {
	t.Helper()
	gopFrames := int64(j.gopFrames)
	slowWait(t, ctx, "three quarters into a GOP", time.Millisecond, func() (bool, string) {
		n := pub.videoFrames.Load()
		return n > gopFrames && n%gopFrames == 3*gopFrames/4, fmt.Sprintf("%d video frames published", n)
	})
	posted := time.Now()
	s := playThroughLink(t, ctx, node.url, stream, linkConfig{Rate: j.rate, Queue: joinLinkQueue})
	connected := time.Now()
	var st relay.ViewerStats
	slowWait(t, ctx, "the viewer to reach the live edge", 10*time.Millisecond, func() (bool, string) {
		st = node.stats(t, s.id)
		return st.CatchUp > 0, fmt.Sprintf("%d frames replayed, catch-up %v", st.Replayed, st.CatchUp)
	})
	e2eWaitUntil(t, ctx, time.Now().Add(time.Second)) // a second of live video after the catch-up
	var first time.Time
	for _, p := range s.packets(mimeH264) {
		if p.marker {
			first = p.at
			break
		}
	}
	c := s.link.counters()
	drops := c.DownQueueDrops + c.DownLossDrops
	keyTx := time.Duration(float64(j.keyBytes*8) / float64(j.rate) * float64(time.Second))
	mbps := j.rate / 1_000_000
	name := fmt.Sprintf("GOP %d s, replay rate %g, link %d Mb/s", j.gop, j.replay, mbps)
	t.Logf("%s: handshake %v, first frame %v after it (keyframe transmission %v), %d frames replayed, live edge %v after the start, link drops %d",
		name, connected.Sub(posted).Round(time.Millisecond), first.Sub(connected).Round(time.Millisecond), keyTx.Round(time.Millisecond),
		st.Replayed, st.CatchUp.Round(time.Millisecond), drops)
	t.Logf("FIGURE join_link_gop%ds_replay%g_%dmbps_catchup_ms=%d join_link_gop%ds_replay%g_%dmbps_first_frame_ms=%d join_link_gop%ds_replay%g_%dmbps_drops=%d",
		j.gop, j.replay, mbps, st.CatchUp.Milliseconds(), j.gop, j.replay, mbps, first.Sub(posted).Milliseconds(), j.gop, j.replay, mbps, drops)
	if first.IsZero() {
		t.Fatalf("%s: no complete frame", name)
	}
	if !j.checked() {
		return
	}
	if drops != 0 {
		t.Errorf("%s: the link dropped %d datagrams, want 0: %+v", name, drops, c)
	}
	if late := first.Sub(connected); late > keyTx+joinLinkQueue+100*time.Millisecond {
		t.Errorf("%s: first frame %v after the connection, want at most the keyframe's transmission %v + %v + 100 ms", name, late, keyTx, joinLinkQueue)
	}
	// The pause after the replayed keyframe may step its timestamps up to
	// 250 ms (22,500 ticks).
	checkContinuity(t, track{name: name + " video", maxStep: 22_500 + 3000}, s.packets(mimeH264))
	checkContinuity(t, track{name: name + " audio", audio: true, maxStep: 960}, s.packets(mimeOpus))
}

// joinFixture encodes two GOPs of gop seconds of a 640x360 test pattern
// (H.264 baseline at 2 Mb/s, 30 fps, a keyframe every gop seconds) and a
// tone (Opus) into MPEG-TS, and returns it.
func joinFixture(t *testing.T, ctx context.Context, ffmpeg string, gop int) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "join.ts")
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(2*gop),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
		"-g", fmt.Sprint(30*gop), "-keyint_min", fmt.Sprint(30*gop), "-sc_threshold", "0",
		"-b:v", "2M", "-minrate", "2M", "-maxrate", "2M", "-bufsize", "1M", "-x264-params", "nal-hrd=cbr",
		"-c:a", "libopus", "-b:a", "32k", "-ac", "2", "-frame_duration", "20",
		"-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fixtureGOP returns the GOP length of d in frames (its first two
// keyframes apart), its largest keyframe in bytes and its video bitrate.
func fixtureGOP(d *tstest.Demuxed) (frames, keyBytes int, bitrate float64) {
	video := d.Kind(tsframes.KindVideo)
	var keys []int
	total := 0
	for i, f := range video {
		total += len(f.Data)
		if f.Key {
			keys = append(keys, i)
			keyBytes = max(keyBytes, len(f.Data))
		}
	}
	if len(keys) >= 2 {
		frames = keys[1] - keys[0]
	}
	if n := len(video); n > 1 {
		bitrate = float64(total*8) / (float64(video[n-1].DTS-video[0].DTS) / 90000)
	}
	return frames, keyBytes, bitrate
}
