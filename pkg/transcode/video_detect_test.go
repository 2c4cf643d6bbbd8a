package transcode

import (
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestDetectBFrames: on ffmpeg's fixtures, reordered frames are found in
// bframes.ts (x264 -bf 2) within its first GOP's first frames, and never in
// the fixtures made with -bf 0 (av.ts, video.ts, gop4.ts, wrap.ts across
// the PTS wrap, pmtchange.ts across its PMT change).
func TestDetectBFrames(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    bool
	}{
		{"bframes.ts", true},
		{"av.ts", false},
		{"video.ts", false},
		{"gop4.ts", false},
		{"wrap.ts", false},
		{"pmtchange.ts", false},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			frames := tstest.Demux(t, tstest.Read(t, tc.fixture)).Kind(tsframes.KindVideo)
			if len(frames) < 60 {
				t.Fatalf("%d video frames", len(frames))
			}
			var d reorderDetector
			at := -1
			for i, f := range frames {
				if d.frame(f) && at < 0 {
					at = i
				}
			}
			if got := at >= 0; got != tc.want {
				t.Fatalf("B-frames detected: %v (at frame %d, %d reordered of %d), want %v", got, at, d.reordered, len(frames), tc.want)
			}
			if tc.want && at > 6 {
				t.Errorf("detected at frame %d (decode order), want within the first 7", at)
			}
		})
	}
}

// TestDetectIgnoresDiscontinuity: a backward jump of the source's clock
// (more than maxReorder) is not reordering, nor is one odd frame.
func TestDetectIgnoresDiscontinuity(t *testing.T) {
	var d reorderDetector
	for _, pts := range []int64{900000, 903000, 906000, 3000, 6000, 9000, 6000, 12000, 15000} {
		if d.frame(tsframes.Frame{PTS: pts}) {
			t.Fatalf("detected at PTS %d", pts)
		}
	}
	if !d.frame(tsframes.Frame{PTS: 14000}) {
		t.Fatal("a second reordered frame not detected")
	}
}

// TestRateMeter: bframes.ts's bitrate, measured over its first second,
// is within the bounds of what x264 was asked for (600 kb/s, peaks to 800).
func TestRateMeter(t *testing.T) {
	var r rateMeter
	frames := tstest.Demux(t, tstest.Read(t, "bframes.ts")).Kind(tsframes.KindVideo)
	n := 0
	for _, f := range frames {
		n++
		if r.frame(f) {
			break
		}
	}
	b := r.bitrate()
	t.Logf("bitrate %d bit/s over %d frames", b, n)
	if n < 29 || n > 32 || b < 300_000 || b > 1_200_000 {
		t.Errorf("%d bit/s over %d frames, want 300k to 1.2M over about 30", b, n)
	}
	var empty rateMeter
	if got := empty.bitrate(); got != minVideoBitrate {
		t.Errorf("no frames: %d, want %d", got, minVideoBitrate)
	}
}
