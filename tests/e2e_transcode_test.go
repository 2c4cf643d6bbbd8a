//go:build external

package tests

import (
	"testing"
)

// TestE2EPlaysTranscodedAudio: ffmpeg publishes a live H.264 source over
// HTTP PUT (MPEG-TS) with AAC, MPEG-1 Layer II or AC-3 audio; the broker's
// transcoding stage (on by default with ffmpeg on PATH) makes Opus of it, and
// Chromium plays video and audible audio through a whep-node.
func TestE2EPlaysTranscodedAudio(t *testing.T) {
	for _, codec := range []string{"aac", "mp2", "ac3"} {
		t.Run(codec, func(t *testing.T) {
			checkLeaks(t)
			stack, ctx := startE2EStack(t)
			page := e2eBrowser(t, ctx)
			e2eStart(t, "ffmpeg "+codec, ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "error",
				"-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
				"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
				"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
				"-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "250k",
				"-c:a", codec, "-b:a", "128k", "-ac", "2",
				"-f", "mpegts", "-method", "PUT", stack.ingestURL+"/ingest/cam")
			playWithAudio(t, ctx, stack, page, "cam")
		})
	}
}
