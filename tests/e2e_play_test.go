//go:build external

package tests

import (
	"testing"
	"time"
)

// The end-to-end tests run the real binaries (broker, whep-node), ingest
// with ffmpeg in real time and play in headless Chromium.

// TestE2EPlaysH264Opus plays av.ts (H.264 + Opus, looped): over a 5 s
// window the frames decoded are at least 90 % of those the node sent,
// framesDecoded grows in every 500 ms sample, no freeze is counted, the
// picture is the test pattern and the unmuted audio has energy.
func TestE2EPlaysH264Opus(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	stack.ingest(t, "cam", "av.ts", true)
	stack.waitLive(t, ctx, "cam")
	stack.play(t, page, "cam", 20*time.Second)
	e2eUnmute(t, page)
	// The measurement starts once frames are being decoded.
	if err := waitJS(page, 10*time.Second, `whepcast.stats().video && whepcast.stats().video.framesDecoded > 0`); err != nil {
		t.Fatal(err)
	}

	samples := stack.sampleWindow(t, page, 10, 500*time.Millisecond)
	e2eCheckVideo(t, samples)
	e2eCheckNoFreeze(t, samples)
	e2eCheckAudio(t, samples)
	e2eCheckPicture(t, page, 320, 180)
}

// TestE2EPlaysVideoOnly plays video.ts (H.264 only, looped): video flows
// and no audio arrives.
func TestE2EPlaysVideoOnly(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	stack.ingest(t, "vonly", "video.ts", true)
	stack.waitLive(t, ctx, "vonly")
	stack.play(t, page, "vonly", 20*time.Second)
	if err := waitJS(page, 10*time.Second, `whepcast.stats().video && whepcast.stats().video.framesDecoded > 0`); err != nil {
		t.Fatal(err)
	}

	samples := stack.sampleWindow(t, page, 6, 500*time.Millisecond)
	e2eCheckVideo(t, samples)
	e2eCheckPicture(t, page, 320, 180)
	if a := samples[len(samples)-1].stats.Audio; a != nil && a.PacketsReceived != 0 {
		t.Errorf("%v audio packets received from a video-only stream", a.PacketsReceived)
	}
	if n := samples[len(samples)-1].node.Stats.Audio.Frames; n != 0 {
		t.Errorf("the node sent %d audio packets for a video-only stream", n)
	}
}

// TestE2EPlaysAudioOnly plays audio.ts (Opus only, looped): audio packets
// arrive, the unmuted audio has energy, and no video arrives.
func TestE2EPlaysAudioOnly(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	stack.ingest(t, "aonly", "audio.ts", true)
	stack.waitLive(t, ctx, "aonly")
	stack.play(t, page, "aonly", 20*time.Second)
	e2eUnmute(t, page)
	if err := waitJS(page, 10*time.Second, `whepcast.stats().audio && whepcast.stats().audio.packetsReceived > 0`); err != nil {
		t.Fatal(err)
	}

	samples := stack.sampleWindow(t, page, 6, 500*time.Millisecond)
	e2eCheckAudio(t, samples)
	if v := samples[len(samples)-1].stats.Video; v != nil && (v.PacketsReceived != 0 || v.FramesDecoded != 0) {
		t.Errorf("video from an audio-only stream: %v packets, %v frames decoded", v.PacketsReceived, v.FramesDecoded)
	}
	if n := samples[len(samples)-1].node.Stats.Video.Frames; n != 0 {
		t.Errorf("the node sent %d video frames for an audio-only stream", n)
	}
}
