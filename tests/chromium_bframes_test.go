//go:build external

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A B-frame source end to end: ffmpeg publishes testdata/bframes.ts
// (640x360, 30 fps, H.264 High profile with 2 B-frames, each frame's number
// drawn as a row of 16 black or white blocks, bit 0 on the left) to the
// broker binary, whose transcoding stage re-encodes the video without
// B-frames; Chromium plays it through a whep-node. The page reads the frame
// number of every frame it presents (requestVideoFrameCallback, the top
// row drawn into a canvas).

// bframesPeriod is the number of frames of testdata/bframes.ts (4 s at
// 30 fps): the numbers restart at 0 when ffmpeg loops the file.
const bframesPeriod = 120

// frameNumbersJS starts recording, for every frame the <video> presents,
// the frame number drawn in its top row, and the element's counters.
const frameNumbersJS = `(() => {
	const v = document.getElementById('video');
	const c = document.createElement('canvas');
	c.width = 640; c.height = 40;
	const g = c.getContext('2d', {willReadFrequently: true});
	const rec = {numbers: [], bad: 0, callbacks: 0};
	window.bframes = rec;
	const read = () => {
		g.drawImage(v, 0, 0, 640, 40, 0, 0, 640, 40);
		const d = g.getImageData(0, 0, 640, 40).data;
		let n = 0;
		for (let k = 0; k < 16; k++) {
			const i = (20 * 640 + 40 * k + 20) * 4;
			const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
			if (y > 170) n |= 1 << k;
			else if (y > 80) { rec.bad++; return; }
		}
		rec.numbers.push(n);
	};
	const cb = () => {
		rec.callbacks++;
		if (v.videoWidth === 640) read();
		v.requestVideoFrameCallback(cb);
	};
	v.requestVideoFrameCallback(cb);
	return true;
})()`

type frameNumbers struct {
	Numbers   []int `json:"numbers"`
	Bad       int   `json:"bad"`
	Callbacks int   `json:"callbacks"`
}

// TestE2EPlaysBFrames: the B-frame stream plays in Chromium at 28 fps or
// more (framesDecoded over an 8 s window) with every frame shown in order
// (the numbers read from the picture strictly increase, modulo the loop).
func TestE2EPlaysBFrames(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t, strings.Fields(os.Getenv("WHEPCAST_BFRAMES_BROKER_ARGS"))...)
	page := e2eBrowser(t, ctx)
	// ffmpeg -stream_loop loses the first video packet (the keyframe) of an
	// MPEG-TS input whose first DTS is before its first PTS (B-frames) each
	// time it loops, and the next GOP decodes as garbage: loop an MP4 of
	// the same packets (-c copy) instead, whose seek back is exact.
	mp4 := filepath.Join(t.TempDir(), "bframes.mp4")
	if out, err := exec.CommandContext(ctx, ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", filepath.Join("..", "testdata", "bframes.ts"), "-c", "copy", "-f", "mp4", mp4).CombinedOutput(); err != nil {
		t.Fatalf("bframes.ts to MP4: %v: %s", err, out)
	}
	e2eStart(t, "ffmpeg bf", ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-stream_loop", "-1", "-i", mp4, "-c", "copy", "-f", "mpegts",
		"-method", "PUT", stack.ingestURL+"/ingest/bf")
	stack.waitLive(t, ctx, "bf")
	stack.play(t, page, "bf", 20*time.Second)
	if err := waitJS(page, 15*time.Second, `whepcast.stats().video && whepcast.stats().video.framesDecoded > 0`); err != nil {
		t.Fatal(err)
	}
	// Let the player settle past the first keyframe.
	if err := waitJS(page, 10*time.Second, `whepcast.stats().video.keyFramesDecoded >= 2`); err != nil {
		st, _ := evalJS[map[string]any](page, `whepcast.stats()`)
		t.Fatalf("%v; stats %v", err, st)
	}
	if _, err := evalJS[bool](page, frameNumbersJS); err != nil {
		t.Fatal(err)
	}
	samples := stack.sampleWindow(t, page, 16, 500*time.Millisecond)
	rec, err := evalJS[frameNumbers](page, `window.bframes`)
	if err != nil {
		t.Fatal(err)
	}

	a, b := samples[0].stats.Video, samples[len(samples)-1].stats.Video
	if a == nil || b == nil {
		t.Fatalf("no inbound video: %+v", samples[len(samples)-1].stats)
	}
	window := samples[len(samples)-1].at.Sub(samples[0].at).Seconds()
	fps := (b.FramesDecoded - a.FramesDecoded) / window
	t.Logf("window %.2f s: framesDecoded %.0f (%.1f fps), framesDropped %.0f, framesReceived %.0f, keyFramesDecoded %.0f, freezes %.0f; %dx%d %s",
		window, b.FramesDecoded-a.FramesDecoded, fps, b.FramesDropped-a.FramesDropped, b.FramesReceived-a.FramesReceived,
		b.KeyFramesDecoded-a.KeyFramesDecoded, b.FreezeCount-a.FreezeCount, b.Width, b.Height, b.Codec)
	if fps < 28 {
		t.Errorf("%.1f frames decoded per second, want at least 28", fps)
	}

	// Order: each number read is after the previous one (modulo the loop,
	// by less than half of it); a number may not repeat.
	var backwards []string
	for i := 1; i < len(rec.Numbers); i++ {
		d := (rec.Numbers[i] - rec.Numbers[i-1] + bframesPeriod) % bframesPeriod
		if d == 0 || d > bframesPeriod/2 {
			backwards = append(backwards, fmt.Sprintf("%d→%d", rec.Numbers[i-1], rec.Numbers[i]))
		}
	}
	t.Logf("frames presented: %d callbacks, %d numbers read, %d unreadable, %d out of order; first numbers %v",
		rec.Callbacks, len(rec.Numbers), rec.Bad, len(backwards), rec.Numbers[:min(len(rec.Numbers), 40)])
	if len(rec.Numbers) < int(20*window) {
		t.Errorf("%d frame numbers read in %.1f s, want at least 20 a second", len(rec.Numbers), window)
	}
	if len(backwards) > 0 {
		t.Errorf("%d frames shown out of order or repeated: %s", len(backwards), strings.Join(backwards[:min(len(backwards), 20)], " "))
	}
	if rec.Bad > len(rec.Numbers)/50 {
		t.Errorf("%d frames whose number could not be read (grey blocks), of %d", rec.Bad, len(rec.Numbers))
	}

	// The catalog lists the derived track as the video, the source's
	// marked b_frames; the player says what was done.
	e := stack.catalogEntry(t, ctx, "bf")
	v, _ := e.Tracks.Track(e.Tracks.Video)
	src, _ := e.Tracks.Track(v.DerivedFrom)
	if v.DerivedFrom == 0 || v.Codec != "H264" || !src.BFrames || !strings.HasPrefix(v.ProfileLevelID, "42") {
		t.Errorf("catalog: video %+v from %+v, want a derived H.264 track (baseline profile-level-id) from a source with b_frames", v, src)
	}
	if err := waitJS(page, 10*time.Second, `(whepcast.notes || []).includes('B-frames: re-encoded') &&
		document.getElementById('o-notes').textContent.includes('B-frames: re-encoded')`); err != nil {
		notes, _ := evalJS[any](page, `whepcast.notes`)
		t.Errorf("%v; notes %v", err, notes)
	}
}
