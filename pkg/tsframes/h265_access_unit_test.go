package tsframes

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// escapeRBSP adds the emulation prevention bytes of a NAL unit.
func escapeRBSP(rbsp []byte) []byte {
	var out []byte
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// H.265 NAL units of the tests: the 2-byte header (type << 1, layer 0,
// temporal id 1) and a few payload bytes. The SPS is Main profile (1), main
// tier, level 93 (3.1), with runs of zeros that need emulation prevention.
var (
	h265VPS  = []byte{0x40, 0x01, 0x0c, 0x01, 0xff}
	h265SPS  = escapeRBSP([]byte{0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xa0, 0x0b})
	h265SPS2 = escapeRBSP([]byte{0x42, 0x01, 0x01, 0x22, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120, 0xa0, 0x0b}) // Main 10, high tier, level 120
	h265PPS  = []byte{0x44, 0x01, 0xc1, 0x73}
	h265PPS2 = []byte{0x44, 0x01, 0xc1, 0x72}
	h265AUD  = []byte{0x46, 0x01, 0x50}
	h265SEI  = []byte{0x4e, 0x01, 0x05, 0x01, 0x80}
	h265IDR  = []byte{0x26, 0x01, 0xaf, 0x11, 0x22} // IDR_W_RADL (19)
	h265CRA  = []byte{0x2a, 0x01, 0xaf, 0x33}       // CRA_NUT (21)
	h265P    = []byte{0x02, 0x01, 0xd0, 0x44}       // TRAIL_R (1)
)

var h265Main = h265Profile{profileID: 1, tierFlag: 0, levelID: 93}

func TestH265ParseProfile(t *testing.T) {
	for _, tc := range []struct {
		sps  []byte
		want h265Profile
	}{
		{h265SPS, h265Main},
		{h265SPS2, h265Profile{profileID: 2, tierFlag: 1, levelID: 120}},
	} {
		got, err := parseH265Profile(tc.sps)
		if err != nil || got != tc.want {
			t.Errorf("parseH265Profile(% x) = %+v, %v; want %+v", tc.sps, got, err, tc.want)
		}
	}
	if _, err := parseH265Profile(h265SPS[:10]); !errors.Is(err, ErrAccessUnit) {
		t.Errorf("truncated SPS: error %v, want ErrAccessUnit", err)
	}
}

func TestH265AccessUnit(t *testing.T) {
	full := h265State{vps: h265VPS, sps: h265SPS, pps: h265PPS, keyed: true, profile: h265Main}
	for _, tc := range []struct {
		name     string
		state    h265State
		au       [][]byte
		want     []byte
		key, chg bool
		err      error
		after    h265State
	}{
		{
			name:  "IRAP with parameter sets, AUD removed",
			au:    [][]byte{h265AUD, h265VPS, h265SPS, h265PPS, h265IDR},
			want:  annexB(h265VPS, h265SPS, h265PPS, h265IDR),
			key:   true,
			chg:   true,
			after: full,
		},
		{
			name:  "parameter sets inserted before the IDR, after a SEI",
			state: full,
			au:    [][]byte{h265AUD, h265SEI, h265IDR},
			want:  annexB(h265SEI, h265VPS, h265SPS, h265PPS, h265IDR),
			key:   true,
			after: full,
		},
		{
			name:  "CRA is a keyframe",
			state: full,
			au:    [][]byte{h265CRA},
			want:  annexB(h265VPS, h265SPS, h265PPS, h265CRA),
			key:   true,
			after: full,
		},
		{
			name:  "VPS and SPS inserted before the AU's own PPS",
			state: full,
			au:    [][]byte{h265PPS2, h265IDR},
			want:  annexB(h265VPS, h265SPS, h265PPS2, h265IDR),
			key:   true,
			after: h265State{vps: h265VPS, sps: h265SPS, pps: h265PPS2, keyed: true, profile: h265Main},
		},
		{
			name:  "new SPS changes the profile",
			state: full,
			au:    [][]byte{h265SPS2, h265PPS, h265IDR},
			want:  annexB(h265VPS, h265SPS2, h265PPS, h265IDR),
			key:   true,
			chg:   true,
			after: h265State{vps: h265VPS, sps: h265SPS2, pps: h265PPS, keyed: true, profile: h265Profile{2, 1, 120}},
		},
		{
			name:  "delta frame",
			state: full,
			au:    [][]byte{h265AUD, h265P},
			want:  annexB(h265P),
			after: full,
		},
		{
			name:  "delta before the first keyframe",
			au:    [][]byte{h265P},
			err:   ErrNoKeyframe,
			after: h265State{},
		},
		{
			name:  "parameter sets before the first keyframe are kept",
			au:    [][]byte{h265VPS, h265SPS, h265PPS},
			err:   ErrNoKeyframe,
			chg:   true,
			after: h265State{vps: h265VPS, sps: h265SPS, pps: h265PPS, profile: h265Main},
		},
		{
			name:  "IDR without a VPS",
			au:    [][]byte{h265SPS, h265PPS, h265IDR},
			err:   ErrAccessUnit,
			chg:   true,
			after: h265State{sps: h265SPS, pps: h265PPS, profile: h265Main},
		},
		{
			name:  "only an AUD",
			state: full,
			au:    [][]byte{h265AUD},
			err:   ErrAccessUnit,
			after: full,
		},
		{
			name:  "truncated SPS",
			state: full,
			au:    [][]byte{h265SPS[:8], h265IDR},
			err:   ErrAccessUnit,
			after: full,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.state
			data, key, chg, err := st.accessUnit(tc.au)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) || data != nil {
					t.Errorf("data % x, error %v; want error %v", data, err, tc.err)
				}
			case err != nil:
				t.Fatalf("error %v", err)
			case !bytes.Equal(data, tc.want):
				t.Errorf("data\n% x\nwant\n% x", data, tc.want)
			}
			if key != tc.key || chg != tc.chg {
				t.Errorf("key %v changed %v, want %v %v", key, chg, tc.key, tc.chg)
			}
			if !bytes.Equal(st.vps, tc.after.vps) || !bytes.Equal(st.sps, tc.after.sps) || !bytes.Equal(st.pps, tc.after.pps) ||
				st.keyed != tc.after.keyed || st.profile != tc.after.profile {
				t.Errorf("state after %+v, want %+v", st, tc.after)
			}
			for i := range data {
				data[i] = 0xee // the output does not alias the input
			}
			for _, n := range tc.au {
				if bytes.Contains(n, []byte{0xee, 0xee}) {
					t.Errorf("input NAL changed through the output: % x", n)
				}
			}
		})
	}
}

// TestH265Fixture demuxes testdata/hevc.ts (H.265 Main + Opus, made by
// gen.sh): the counts are ffprobe's, the H.265 track is announced with its
// profile before any frame, every keyframe starts with VPS, SPS and PPS and
// has an IRAP slice, and no decode error is reported.
func TestH265Fixture(t *testing.T) {
	want := readExpect(t, "hevc")
	res := demuxBytes(t, readFixture(t, "hevc"))
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	if got := len(res.video()); got != want.videoFrames {
		t.Errorf("video frames = %d, ffprobe counts %d", got, want.videoFrames)
	}
	if got := res.keyframes(); got != want.keyframes {
		t.Errorf("keyframes = %d, ffprobe counts %d", got, want.keyframes)
	}
	if got := len(res.audio()); got != want.audioPackets {
		t.Errorf("audio packets = %d, ffprobe counts %d", got, want.audioPackets)
	}
	if len(res.anns) != 1 || res.events[0].ann == nil {
		t.Fatalf("announcements %+v, want one, first", res.anns)
	}
	v := res.anns[0].Tracks[0]
	if v.Codec != CodecH265 || v.Kind != KindVideo || !v.WebRTC || v.ProfileID != 1 || v.TierFlag != 0 || v.LevelID != 60 {
		t.Errorf("video track %+v, want H265 WebRTC, profile 1 (Main), tier 0, level 60 (as ffprobe says)", v)
	}
	for i, f := range res.video() {
		if f.Codec != CodecH265 || f.PID != v.PID {
			t.Fatalf("frame %d: codec %s PID %d", i, f.Codec, f.PID)
		}
		var au h264.AnnexB
		if err := au.Unmarshal(f.Data); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i == 0 && !f.Key {
			t.Errorf("first frame is not a keyframe")
		}
		var types []h265.NALUType
		irap := false
		for _, n := range au {
			types = append(types, h265NALType(n))
			irap = irap || isIRAP(h265NALType(n))
			if h265NALType(n) == h265.NALUType_AUD_NUT {
				t.Errorf("frame %d: AUD left in", i)
			}
		}
		if f.Key != irap {
			t.Errorf("frame %d: Key %v, NAL types %v", i, f.Key, types)
		}
		if f.Key && (len(types) < 4 || types[0] != h265.NALUType_VPS_NUT || types[1] != h265.NALUType_SPS_NUT || types[2] != h265.NALUType_PPS_NUT) {
			t.Errorf("frame %d: keyframe NAL types %v, want VPS, SPS, PPS first", i, types)
		}
	}
}

// TestH265AccessUnits: the exported form keeps the parameter sets of a
// configuration given on their own and puts them before the first IDR.
func TestH265AccessUnits(t *testing.T) {
	var h H265AccessUnits
	if _, _, changed, err := h.Next([][]byte{h265VPS, h265SPS, h265PPS}); !errors.Is(err, ErrNoKeyframe) || !changed {
		t.Fatalf("configuration: changed %v, error %v", changed, err)
	}
	var tr Track
	h.Fill(&tr)
	if tr.ProfileID != 1 || tr.TierFlag != 0 || tr.LevelID != 93 {
		t.Fatalf("track %+v", tr)
	}
	data, key, _, err := h.Next([][]byte{h265IDR})
	if err != nil || !key || !bytes.Equal(data, annexB(h265VPS, h265SPS, h265PPS, h265IDR)) {
		t.Fatalf("IDR: % x key %v error %v", data, key, err)
	}
}
