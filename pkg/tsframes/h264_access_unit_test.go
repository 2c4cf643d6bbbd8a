package tsframes

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestAccessUnit(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	for _, tc := range []struct {
		name      string
		state     h264State
		au        [][]byte
		want      []byte
		key, plid bool
		err       error
		after     h264State
	}{
		{
			name:  "keyframe with parameter sets, AUD removed",
			au:    [][]byte{aud, testSPS, testPPS, testIDR},
			want:  annexB(testSPS, testPPS, testIDR),
			key:   true,
			plid:  true,
			after: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
		},
		{
			name:  "parameter sets inserted",
			state: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
			au:    [][]byte{aud, testSEI, testIDR},
			want:  annexB(testSEI, testSPS, testPPS, testIDR),
			key:   true,
			after: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
		},
		{
			name:  "SPS inserted before the AU's own PPS",
			state: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
			au:    [][]byte{testPPS2, testIDR},
			want:  annexB(testSPS, testPPS2, testIDR),
			key:   true,
			after: h264State{sps: testSPS, pps: testPPS2, keyed: true, profileLevelID: "42c01e"},
		},
		{
			name:  "new SPS changes the profile-level-id",
			state: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
			au:    [][]byte{testSPS2, testPPS2, testIDR},
			want:  annexB(testSPS2, testPPS2, testIDR),
			key:   true,
			plid:  true,
			after: h264State{sps: testSPS2, pps: testPPS2, keyed: true, profileLevelID: "4d401f"},
		},
		{
			name:  "delta frame",
			state: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
			au:    [][]byte{aud, testP, aud},
			want:  annexB(testP),
			after: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
		},
		{
			name:  "delta before the first keyframe",
			au:    [][]byte{testP},
			err:   ErrNoKeyframe,
			after: h264State{},
		},
		{
			name:  "parameter sets without IDR before the first keyframe are kept",
			au:    [][]byte{testSPS, testPPS},
			err:   ErrNoKeyframe,
			plid:  true,
			after: h264State{sps: testSPS, pps: testPPS, profileLevelID: "42c01e"},
		},
		{
			name:  "IDR without any SPS",
			au:    [][]byte{testPPS, testIDR},
			err:   ErrAccessUnit,
			after: h264State{pps: testPPS},
		},
		{
			name:  "only an AUD",
			state: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
			au:    [][]byte{aud},
			err:   ErrAccessUnit,
			after: h264State{sps: testSPS, pps: testPPS, keyed: true, profileLevelID: "42c01e"},
		},
		{
			name:  "truncated SPS",
			au:    [][]byte{{0x67, 0x42}, testPPS, testIDR},
			err:   ErrAccessUnit,
			after: h264State{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.state
			data, key, plid, err := st.accessUnit(tc.au)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !bytes.Equal(data, tc.want) || key != tc.key || plid != tc.plid {
				t.Errorf("got % x key=%v plid=%v, want % x key=%v plid=%v", data, key, plid, tc.want, tc.key, tc.plid)
			}
			if !bytes.Equal(st.sps, tc.after.sps) || !bytes.Equal(st.pps, tc.after.pps) ||
				st.keyed != tc.after.keyed || st.profileLevelID != tc.after.profileLevelID {
				t.Errorf("state %+v, want %+v", st, tc.after)
			}
		})
	}
}

// TestAccessUnitNoAlias: the output and the stored SPS/PPS do not share
// memory with the input.
func TestAccessUnitNoAlias(t *testing.T) {
	sps := append([]byte(nil), testSPS...)
	pps := append([]byte(nil), testPPS...)
	idr := append([]byte(nil), testIDR...)
	var st h264State
	data, _, _, err := st.accessUnit([][]byte{sps, pps, idr})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{sps, pps, idr} {
		for i := range b {
			b[i] = 0
		}
	}
	if !bytes.Equal(data, annexB(testSPS, testPPS, testIDR)) || !bytes.Equal(st.sps, testSPS) || !bytes.Equal(st.pps, testPPS) {
		t.Error("output or state aliases the input")
	}
}

// nalus splits an Annex-B access unit and checks it uses 4-byte start codes
// only.
func nalus(t testing.TB, au []byte) [][]byte {
	t.Helper()
	if !bytes.HasPrefix(au, []byte{0, 0, 0, 1}) {
		t.Fatalf("access unit does not start with 00 00 00 01: % x", au[:min(len(au), 8)])
	}
	var a h264.AnnexB
	if err := a.Unmarshal(au); err != nil {
		t.Fatalf("access unit is not Annex-B: %v", err)
	}
	if n := bytes.Count(au, []byte{0, 0, 1}); n != len(a) {
		t.Fatalf("%d start codes for %d NAL units", n, len(a))
	}
	return a
}

func naluType(n []byte) h264.NALUType { return h264.NALUType(n[0] & 0x1F) }

// checkVideoFrames checks the access unit contract on every video frame: no
// AUD, Key iff an IDR is present, SPS and PPS before the IDR of a keyframe.
func checkVideoFrames(t *testing.T, frames []Frame) {
	t.Helper()
	for i, f := range frames {
		if f.Kind != KindVideo {
			continue
		}
		var sps, pps, idr int = -1, -1, -1
		for j, n := range nalus(t, f.Data) {
			switch naluType(n) {
			case h264.NALUTypeAccessUnitDelimiter:
				t.Errorf("frame %d: AUD left in the access unit", i)
			case h264.NALUTypeSPS:
				if sps < 0 {
					sps = j
				}
			case h264.NALUTypePPS:
				if pps < 0 {
					pps = j
				}
			case h264.NALUTypeIDR:
				if idr < 0 {
					idr = j
				}
			}
		}
		if f.Key != (idr >= 0) {
			t.Errorf("frame %d: Key=%v but IDR at %d", i, f.Key, idr)
		}
		if f.Key && !(sps >= 0 && pps > sps && idr > pps) {
			t.Errorf("frame %d (PTS %d): keyframe NAL order SPS@%d PPS@%d IDR@%d", i, f.PTS, sps, pps, idr)
		}
		if f.Duration != 0 {
			t.Errorf("frame %d: video Duration %d", i, f.Duration)
		}
	}
}

func TestKeyframesCarryParameterSets(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			res := demuxBytes(t, readFixture(t, name))
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkVideoFrames(t, res.frames)
		})
	}
}

// TestInsertsParameterSets: an encoder that sends SPS/PPS only with the
// first IDR gets them inserted, byte for byte, before every later IDR.
func TestInsertsParameterSets(t *testing.T) {
	v := videoTrack()
	tw := newTSWriter(t, v)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	tw.h264(v, 93000, testP)
	tw.h264(v, 96000, testIDR)          // no SPS/PPS
	tw.h264(v, 99000, testSEI, testIDR) // SEI first
	tw.h264(v, 102000, testPPS, testIDR)

	res := demuxBytes(t, tw.buf.Bytes())
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	want := []Frame{
		{PTS: 90000, Key: true, Data: annexB(testSPS, testPPS, testIDR)},
		{PTS: 93000, Data: annexB(testP)},
		{PTS: 96000, Key: true, Data: annexB(testSPS, testPPS, testIDR)},
		{PTS: 99000, Key: true, Data: annexB(testSEI, testSPS, testPPS, testIDR)},
		{PTS: 102000, Key: true, Data: annexB(testSPS, testPPS, testIDR)},
	}
	if len(res.frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(want))
	}
	for i, w := range want {
		f := res.frames[i]
		if f.PID != 256 || f.Kind != KindVideo || f.Codec != CodecH264 ||
			f.PTS != w.PTS || f.DTS != w.PTS || f.Key != w.Key || !bytes.Equal(f.Data, w.Data) {
			t.Errorf("frame %d = %+v\nwant PTS %d key %v data % x", i, f, w.PTS, w.Key, w.Data)
		}
	}
	checkVideoFrames(t, res.frames)
	if len(res.anns) != 1 || res.anns[0].Tracks[0].ProfileLevelID != "42c01e" {
		t.Errorf("announcements %+v, want one with profile-level-id 42c01e", res.anns)
	}
}

// TestProfileLevelIDChange: a new SPS with another profile-level-id is
// announced before the frame that carries it.
func TestProfileLevelIDChange(t *testing.T) {
	v, a := videoTrack(), opusTrack()
	tw := newTSWriter(t, v, a)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	tw.opus(a, 90000, opusPacket20ms)
	tw.h264(v, 93000, testP)
	tw.h264(v, 96000, testSPS2, testPPS2, testIDR)
	tw.h264(v, 99000, testP)
	tw.h264(v, 102000, testIDR)

	res := demuxBytes(t, tw.buf.Bytes())
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	var got []string
	for _, ev := range res.events {
		switch {
		case ev.ann != nil:
			got = append(got, "ann:"+ev.ann.Tracks[0].ProfileLevelID)
		case ev.frame.Kind == KindVideo:
			got = append(got, "v")
		default:
			got = append(got, "a")
		}
	}
	// The Opus PES is complete (its length is known) before the first video
	// PES, which ends only when the next one starts.
	want := []string{"ann:42c01e", "a", "v", "v", "ann:4d401f", "v", "v", "v"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if last := res.frames[len(res.frames)-1]; !bytes.Equal(last.Data, annexB(testSPS2, testPPS2, testIDR)) {
		t.Errorf("last keyframe % x, want the new SPS/PPS inserted", last.Data)
	}
	if tr := res.anns[1].Tracks; len(tr) != 2 || tr[1].Codec != CodecOpus {
		t.Errorf("second announcement %+v", tr)
	}
}
