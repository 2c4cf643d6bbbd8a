package tsframes

import (
	"testing"
)

func TestUnwrapper(t *testing.T) {
	const p = tsPeriod
	for _, tc := range []struct {
		name string
		raw  []int64
		want []int64
	}{
		{"plain", []int64{0, 3000, 6000}, []int64{0, 3000, 6000}},
		{"starts high", []int64{p - 3000, p - 1}, []int64{p - 3000, p - 1}},
		{"wrap", []int64{p - 3000, p - 100, 50, 3050}, []int64{p - 3000, p - 100, p + 50, p + 3050}},
		{"small step back", []int64{100, 50, 200}, []int64{100, 50, 200}},
		{"step back across the wrap", []int64{10, p - 5, 20}, []int64{10, -5, 20}},
		{"back across the wrap after it", []int64{p - 10, 20, p - 5, 30}, []int64{p - 10, p + 20, p - 5, p + 30}},
		{"many wraps", []int64{0, p / 3, 2 * p / 3, 0, p / 3, 2 * p / 3, 0}, []int64{0, p / 3, 2 * p / 3, p, p + p/3, p + 2*p/3, 2 * p}},
		{"bits above 33 ignored", []int64{p + 7, 2*p + 9}, []int64{7, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u unwrapper
			for i, raw := range tc.raw {
				if got := u.unwrap(raw); got != tc.want[i] {
					t.Fatalf("value %d: unwrap(%d) = %d, want %d", i, raw, got, tc.want[i])
				}
			}
		})
	}
}

// wrapFixture returns wrap.ts, whose first PTS lies less than a second
// before 2^33 (gen.sh: -output_ts_offset 95443 with no mux preload), and that
// first raw PTS.
func wrapFixture(t *testing.T) (data []byte, firstRaw int64) {
	t.Helper()
	data = readFixture(t, "wrap")
	first := firstRawPTS(data)
	if first < tsPeriod-90000 || first >= tsPeriod {
		t.Fatalf("wrap.ts starts at raw PTS %d, want within 1 s before 2^33 (regenerate with testdata/gen.sh)", first)
	}
	return data, first
}

func TestWrap(t *testing.T) {
	want := readExpect(t, "wrap")
	data, firstRaw := wrapFixture(t)
	res := demuxBytes(t, data)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	if len(res.video()) != want.videoFrames || len(res.audio()) != want.audioPackets || res.keyframes() != want.keyframes {
		t.Errorf("%d video, %d key, %d audio; want %+v", len(res.video()), res.keyframes(), len(res.audio()), want)
	}
	for _, kind := range []Kind{KindVideo, KindAudio} {
		frames := res.kind(kind)
		if len(frames) == 0 {
			t.Fatalf("no %s frames", kind)
		}
		if frames[0].DTS >= tsPeriod || frames[0].DTS < firstRaw-90000 {
			t.Errorf("%s starts at %d, want just before 2^33", kind, frames[0].DTS)
		}
		if last := frames[len(frames)-1]; last.PTS <= tsPeriod || last.DTS <= tsPeriod {
			t.Errorf("%s ends at PTS %d DTS %d, want > 2^33", kind, last.PTS, last.DTS)
		}
		for i := 1; i < len(frames); i++ {
			prev, cur := frames[i-1], frames[i]
			if cur.DTS <= prev.DTS || cur.PTS <= prev.PTS {
				t.Fatalf("%s frame %d: PTS %d DTS %d after PTS %d DTS %d", kind, i, cur.PTS, cur.DTS, prev.PTS, prev.DTS)
			}
			// Constant rates: 30 fps video, 20 ms Opus packets.
			want := int64(3000)
			if kind == KindAudio {
				want = prev.Duration
			}
			if cur.PTS-prev.PTS != want {
				t.Fatalf("%s frame %d: PTS step %d, want %d", kind, i, cur.PTS-prev.PTS, want)
			}
		}
	}
}
