package relay

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/pion/rtp/codecs"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// nal265 builds an H.265 NAL unit of type typ (layer 0, TID 1) and n bytes
// in all.
func nal265(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = typ<<1, 0x01
	for i := 2; i < n; i++ {
		b[i] = byte(i%250) + 2 // never 0 or 1: no start code inside
	}
	return b
}

// casesPacketizeH265 feed the H.265 packetizer test and its fuzz seeds.
var casesPacketizeH265 = []struct {
	name string
	au   []byte
	mtu  int
	// want are the NAL units a receiver gets; kinds the packet kinds
	// (S single NAL unit, A aggregation, F fragmentation unit).
	want  [][]byte
	kinds string
}{
	{"IRAP with parameter sets", annexB(sc4, nal265(35, 3), nal265(32, 24), nal265(33, 40), nal265(34, 7), nal265(39, 30), nal265(19, 900)), 1200,
		[][]byte{nal265(32, 24), nal265(33, 40), nal265(34, 7), nal265(39, 30), nal265(19, 900)}, "A"},
	{"parameter sets then a large IDR", annexB(sc4, nal265(32, 24), nal265(33, 40), nal265(34, 7), nal265(19, 3000)), 1200,
		[][]byte{nal265(32, 24), nal265(33, 40), nal265(34, 7), nal265(19, 3000)}, "AFFF"},
	{"single slice, 3-byte start code", annexB(sc3, nal265(1, 700)), 1200, [][]byte{nal265(1, 700)}, "S"},
	{"slice of exactly mtu", annexB(sc3, nal265(1, 1200)), 1200, [][]byte{nal265(1, 1200)}, "S"},
	{"slice one over mtu", annexB(sc3, nal265(1, 1201)), 1200, [][]byte{nal265(1, 1201)}, "FF"},
	{"two slices that do not fit together", annexB(sc4, nal265(1, 700), nal265(1, 700)), 1200,
		[][]byte{nal265(1, 700), nal265(1, 700)}, "SS"},
	{"trailing zeros and filler", append(annexB(sc4, nal265(1, 50), nal265(38, 10)), 0, 0), 1200, [][]byte{nal265(1, 50)}, "S"},
	{"only a delimiter", annexB(sc4, nal265(35, 3)), 1200, nil, ""},
	{"units without payload dropped", annexB(sc4, []byte{0x26}, nal265(33, 2), nal265(19, 30)), 1200, [][]byte{nal265(19, 30)}, "S"},
	{"small mtu", annexB(sc4, nal265(33, 10), nal265(19, 25)), 10, [][]byte{nal265(33, 10), nal265(19, 25)}, "SFFFF"},
}

func kindOf265(p []byte) byte {
	switch h265Type(p[0]) {
	case h265TypeAP:
		return 'A'
	case h265TypeFU:
		return 'F'
	default:
		return 'S'
	}
}

// depacketizeH265 runs payloads through pion's H.265 depacketizer and
// returns the NAL units.
func depacketizeH265(t testing.TB, payloads [][]byte) [][]byte {
	t.Helper()
	var dep codecs.H265Depacketizer
	var annexb []byte
	for _, p := range payloads {
		b, err := dep.Unmarshal(p)
		if err != nil {
			t.Fatalf("depacketize % x: %v", p[:min(len(p), 8)], err)
		}
		annexb = append(annexb, b...)
	}
	if len(annexb) == 0 {
		return nil
	}
	nals, err := splitAnnexB(annexb)
	if err != nil {
		t.Fatal(err)
	}
	return nals
}

func TestPacketizeH265(t *testing.T) {
	for _, c := range casesPacketizeH265 {
		t.Run(c.name, func(t *testing.T) {
			payloads, n, err := packetizeVideo(tsframes.CodecH265, c.au, c.mtu)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(c.want) {
				t.Errorf("NAL units carried %d, want %d", n, len(c.want))
			}
			var kinds []byte
			for i, p := range payloads {
				if len(p) > c.mtu {
					t.Errorf("payload %d: %d bytes > mtu %d", i, len(p), c.mtu)
				}
				kinds = append(kinds, kindOf265(p))
			}
			if string(kinds) != c.kinds {
				t.Errorf("packet kinds %q, want %q", kinds, c.kinds)
			}
			if err := sameNALs(c.want, depacketizeH265(t, payloads)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestPacketizeH265Headers checks the payload headers RFC 7798 asks for: an
// aggregation packet has type 48, the F bit of any unit and the lowest
// LayerId and TID; a fragmentation unit has type 49 with the unit's F,
// LayerId and TID, then S, E and the unit's type.
func TestPacketizeH265Headers(t *testing.T) {
	vps := nal265(32, 20)
	vps[1] = 0x02 // TID 2
	sps := nal265(33, 20)
	sps[0] |= 0x80 // F
	sps[1] = 0x03  // TID 3
	payloads, _, err := packetizeH265(annexB(sc4, vps, sps), 1200)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x80 | 48<<1, 0x02, 0, 20}
	if len(payloads) != 1 || !bytes.HasPrefix(payloads[0], want) {
		t.Fatalf("AP starts % x, want % x", payloads[0][:4], want)
	}

	idr := nal265(19, 2500)
	idr[1] = 0x09 // LayerId 1, TID 1
	payloads, _, err = packetizeH265(annexB(sc4, idr), 1200)
	if err != nil || len(payloads) != 3 {
		t.Fatalf("%d payloads, %v", len(payloads), err)
	}
	for i, w := range [][]byte{{49 << 1, 0x09, 0x80 | 19}, {49 << 1, 0x09, 19}, {49 << 1, 0x09, 0x40 | 19}} {
		if !bytes.HasPrefix(payloads[i], w) {
			t.Errorf("FU %d starts % x, want % x", i, payloads[i][:3], w)
		}
	}
}

func TestPacketizeH265BadInput(t *testing.T) {
	for name, c := range map[string]struct {
		au  []byte
		mtu int
	}{
		"no start code": {[]byte{0x26, 0x01, 0xaa}, 1200},
		"mtu too small": {annexB(sc4, nal265(1, 20)), 3},
	} {
		if _, _, err := packetizeH265(c.au, c.mtu); !errors.Is(err, errBadAccessUnit) {
			t.Errorf("%s: error %v, want errBadAccessUnit", name, err)
		}
	}
	if _, _, err := packetizeVideo("VP8", annexB(sc4, nal265(1, 20)), 1200); !errors.Is(err, errBadAccessUnit) {
		t.Errorf("VP8: error %v, want errBadAccessUnit", err)
	}
}

func FuzzPacketizeH265(f *testing.F) {
	for _, c := range casesPacketizeH265 {
		f.Add(c.au, uint16(c.mtu))
	}
	f.Fuzz(func(t *testing.T, au []byte, mtu uint16) {
		m := int(mtu%1500) + 4
		payloads, _, err := packetizeH265(au, m)
		if err != nil {
			return
		}
		for _, p := range payloads {
			if len(p) > m || len(p) < h265NALHeaderSize {
				t.Fatalf("payload of %d bytes, mtu %d", len(p), m)
			}
		}
		all, _ := splitAnnexB(au)
		var want [][]byte
		for _, n := range all {
			if typ := h265Type(n[0]); typ != h265TypeAUD && typ != h265TypeFD {
				want = append(want, n)
			}
		}
		// RTP payload structure types (48 to 63) and the forbidden_zero_bit
		// are not NAL units a depacketizer gives back as they are.
		want = slices.DeleteFunc(want, func(n []byte) bool { return len(n) <= h265NALHeaderSize })
		for _, n := range want {
			if h265Type(n[0]) >= h265TypeAP || n[0]&0x80 != 0 {
				return
			}
		}
		if err := sameNALs(want, depacketizeH265(t, payloads)); err != nil {
			t.Fatal(err)
		}
	})
}
