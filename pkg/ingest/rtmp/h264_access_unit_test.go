package rtmp

import (
	"bytes"
	"testing"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR = []byte{0x65, 0x88, 0x84}
	testP   = []byte{0x41, 0x9a, 0x02}
	testAUD = []byte{0x09, 0xf0}
)

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = appendNALU(b, n)
	}
	return b
}

// accessUnitCases run in order on one h264Track: each AU's result depends on
// what came before.
var accessUnitCases = []struct {
	name       string
	au         [][]byte
	want       []byte
	key        bool
	spsChanged bool
}{
	{name: "P before any IDR is dropped", au: [][]byte{testP}},
	{name: "IDR before any SPS is dropped", au: [][]byte{testIDR}},
	{name: "sequence header", au: [][]byte{testSPS, testPPS}, spsChanged: true},
	{name: "IDR gets SPS and PPS in front", au: [][]byte{testAUD, testIDR}, want: annexB(testSPS, testPPS, testIDR), key: true},
	{name: "P after the IDR", au: [][]byte{testAUD, testP}, want: annexB(testP)},
	{name: "IDR with its own SPS and PPS keeps one copy", au: [][]byte{testSPS, testPPS, testIDR}, want: annexB(testSPS, testPPS, testIDR), key: true},
	{name: "empty NAL units are skipped", au: [][]byte{{}, testP}, want: annexB(testP)},
	{name: "a new SPS", au: [][]byte{{0x67, 0x64, 0x00, 0x28}, testPPS, testIDR}, want: annexB([]byte{0x67, 0x64, 0x00, 0x28}, testPPS, testIDR), key: true, spsChanged: true},
}

func TestAccessUnit(t *testing.T) {
	var st h264Track
	for _, c := range accessUnitCases {
		got, key, changed := st.accessUnit(c.au)
		if !bytes.Equal(got, c.want) || key != c.key || changed != c.spsChanged {
			t.Errorf("%s: %x key %v changed %v; want %x key %v changed %v", c.name, got, key, changed, c.want, c.key, c.spsChanged)
		}
	}
	if id := st.profileLevelID(); id != "640028" {
		t.Errorf("profile-level-id %q, want 640028", id)
	}
}

func FuzzAccessUnit(f *testing.F) {
	for _, c := range accessUnitCases {
		f.Add(annexB(c.au...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// NAL units cut at every 0x00 0x00 0x00 0x01, as RTMP's AVCC gives them.
		au := bytes.Split(b, []byte{0, 0, 0, 1})
		var st h264Track
		st.accessUnit([][]byte{testSPS, testPPS})
		data, key, _ := st.accessUnit(au)
		if key && !bytes.HasPrefix(data, annexB(st.sps, st.pps)) {
			t.Fatalf("keyframe %x without SPS and PPS in front", data)
		}
	})
}
