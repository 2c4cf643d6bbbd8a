//go:build external

package tests

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/proctest"
)

// The ingest protocols end to end: ffmpeg publishes to the broker binary
// over RTMP or SRT, and Chromium plays the stream through a whep-node with
// its audio.

// TestE2EPlaysRTMPWithAAC: ffmpeg publishes a live H.264 + AAC source over
// RTMP (as OBS does); the transcoding stage makes Opus of the AAC, and
// Chromium plays video and audible audio.
func TestE2EPlaysRTMPWithAAC(t *testing.T) {
	checkLeaks(t)
	port := proctest.FreePort(t, "tcp")
	stack, ctx := startE2EStack(t, "--rtmp-addr", fmt.Sprintf("127.0.0.1:%d", port))
	page := e2eBrowser(t, ctx)
	e2eStart(t, "ffmpeg rtmp", ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "250k",
		"-c:a", "aac", "-b:a", "96k", "-ac", "2",
		"-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam", port))
	playWithAudio(t, ctx, stack, page, "cam")
}

// TestE2EPlaysSRT: ffmpeg publishes av.ts (H.264 + Opus) over SRT with the
// streamid publish:cam; Chromium plays video and audible audio.
func TestE2EPlaysSRT(t *testing.T) {
	checkLeaks(t)
	port := proctest.FreePort(t, "udp")
	stack, ctx := startE2EStack(t, "--srt-addr", fmt.Sprintf("127.0.0.1:%d", port))
	page := e2eBrowser(t, ctx)
	e2eStart(t, "ffmpeg srt", ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-stream_loop", "-1", "-i", "testdata/av.ts", "-c", "copy",
		"-f", "mpegts", fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:cam&pkt_size=1316", port))
	playWithAudio(t, ctx, stack, page, "cam")
}

func ffmpegPath(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is missing (%v): apt-get install -y ffmpeg", err)
	}
	return ffmpeg
}

// playWithAudio waits until stream is live on the node, plays it in page,
// unmuted, and checks 5 s of it: video decoded without freeze, audio
// packets with energy.
func playWithAudio(t *testing.T, ctx context.Context, stack *e2eStack, page context.Context, stream string) {
	t.Helper()
	stack.waitLive(t, ctx, stream)
	stack.play(t, page, stream, 20*time.Second)
	e2eUnmute(t, page)
	if err := waitJS(page, 15*time.Second, `whepcast.stats().video && whepcast.stats().video.framesDecoded > 0 &&
		whepcast.stats().audio && whepcast.stats().audio.packetsReceived > 0`); err != nil {
		st, _ := evalJS[map[string]any](page, `whepcast.stats()`)
		t.Fatalf("%v; stats %v", err, st)
	}
	samples := stack.sampleWindow(t, page, 10, 500*time.Millisecond)
	e2eCheckVideo(t, samples)
	e2eCheckNoFreeze(t, samples)
	e2eCheckAudio(t, samples)
}
