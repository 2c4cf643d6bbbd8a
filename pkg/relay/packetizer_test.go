package relay

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/rtp/codecs"
)

// nal builds a NAL unit of type typ (nal_ref_idc 3) and n bytes in all.
func nal(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x60 | typ
	for i := 1; i < n; i++ {
		b[i] = byte(i%250) + 2 // never 0 or 1: no start code inside
	}
	return b
}

func annexB(startCode []byte, nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, startCode...)
		out = append(out, n...)
	}
	return out
}

var (
	sc4 = []byte{0, 0, 0, 1}
	sc3 = []byte{0, 0, 1}
)

// casesPacketize feed the packetizer test and the fuzz seeds.
var casesPacketize = []struct {
	name string
	au   []byte
	mtu  int
	// want are the NAL units a receiver gets; kinds the packet kinds
	// (S single, A STAP-A, F FU-A).
	want  [][]byte
	kinds string
}{
	{"idr with parameter sets", annexB(sc4, nal(9, 2), nal(7, 20), nal(8, 5), nal(6, 30), nal(5, 900)), 1200,
		[][]byte{nal(7, 20), nal(8, 5), nal(6, 30), nal(5, 900)}, "A"},
	{"parameter sets then large idr", annexB(sc4, nal(7, 20), nal(8, 5), nal(5, 3000)), 1200,
		[][]byte{nal(7, 20), nal(8, 5), nal(5, 3000)}, "AFFF"},
	{"single slice, 3-byte start code", annexB(sc3, nal(1, 700)), 1200, [][]byte{nal(1, 700)}, "S"},
	{"slice of exactly mtu", annexB(sc3, nal(1, 1200)), 1200, [][]byte{nal(1, 1200)}, "S"},
	{"slice one over mtu", annexB(sc3, nal(1, 1201)), 1200, [][]byte{nal(1, 1201)}, "FF"},
	{"two slices that do not fit together", annexB(sc4, nal(1, 700), nal(1, 700)), 1200,
		[][]byte{nal(1, 700), nal(1, 700)}, "SS"},
	{"trailing zeros and filler", append(annexB(sc4, nal(1, 50), nal(12, 10)), 0, 0), 1200, [][]byte{nal(1, 50)}, "S"},
	{"leading zero bytes", append([]byte{0, 0}, annexB(sc4, nal(1, 10))...), 1200, [][]byte{nal(1, 10)}, "S"},
	{"only a delimiter", annexB(sc4, nal(9, 2)), 1200, nil, ""},
	{"small mtu", annexB(sc4, nal(7, 10), nal(5, 25)), 10, [][]byte{nal(7, 10), nal(5, 25)}, "SFFF"},
}

func kindOf(p []byte) byte {
	switch p[0] & nalTypeMask {
	case nalTypeSTAPA:
		return 'A'
	case nalTypeFUA:
		return 'F'
	default:
		return 'S'
	}
}

// depacketizeAll runs payloads through pion's depacketizer and returns the
// NAL units.
func depacketizeAll(t testing.TB, payloads [][]byte) [][]byte {
	t.Helper()
	var dep codecs.H264Packet
	var annexb []byte
	for _, p := range payloads {
		b, err := dep.Unmarshal(p)
		if err != nil {
			t.Fatalf("depacketize: %v", err)
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

func TestPacketizeH264(t *testing.T) {
	for _, c := range casesPacketize {
		t.Run(c.name, func(t *testing.T) {
			payloads, n, err := packetizeH264(c.au, c.mtu)
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
				kinds = append(kinds, kindOf(p))
			}
			if string(kinds) != c.kinds {
				t.Errorf("packet kinds %q, want %q", kinds, c.kinds)
			}
			if err := sameNALs(c.want, depacketizeAll(t, payloads)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPacketizeH264STAPAHeader(t *testing.T) {
	sps := nal(7, 20)
	sps[0] = 0x67 // nri 3
	pps := nal(8, 4)
	pps[0] = 0x48 // nri 2
	payloads, _, err := packetizeH264(annexB(sc4, sps, pps), 1200)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x78, 0, 20}
	if len(payloads) != 1 || !bytes.HasPrefix(payloads[0], want) {
		t.Fatalf("STAP-A starts % x, want % x", payloads[0][:3], want)
	}
}

func TestPacketizeH264BadInput(t *testing.T) {
	for _, au := range [][]byte{nil, {}, {1, 2, 3, 4}, {0, 0, 2, 1}, {0, 0}} {
		if _, _, err := packetizeH264(au, 1200); !errors.Is(err, errBadAccessUnit) {
			t.Errorf("% x: error %v, want errBadAccessUnit", au, err)
		}
	}
	if _, _, err := packetizeH264(annexB(sc4, nal(1, 10)), 2); !errors.Is(err, errBadAccessUnit) {
		t.Errorf("mtu 2: error %v, want errBadAccessUnit", err)
	}
}

func FuzzPacketizeH264(f *testing.F) {
	for _, c := range casesPacketize {
		f.Add(c.au, uint16(c.mtu))
	}
	f.Fuzz(func(t *testing.T, au []byte, mtu uint16) {
		m := int(mtu%1500) + 3
		payloads, _, err := packetizeH264(au, m)
		if err != nil {
			return
		}
		for _, p := range payloads {
			if len(p) > m || len(p) == 0 {
				t.Fatalf("payload of %d bytes, mtu %d", len(p), m)
			}
		}
		all, _ := splitAnnexB(au)
		var want [][]byte
		for _, n := range all {
			if typ := n[0] & nalTypeMask; typ != nalTypeAUD && typ != nalTypeFill {
				want = append(want, n)
			}
		}
		// pion's depacketizer does not accept NAL unit types 0 and 24-31
		// as single NAL units (the packetizer forwards them as they are),
		// and drops the forbidden_zero_bit of fragmented units.
		for _, n := range want {
			if typ := n[0] & nalTypeMask; typ == 0 || typ >= 24 || n[0]&0x80 != 0 {
				return
			}
		}
		if err := sameNALs(want, depacketizeAll(t, payloads)); err != nil {
			t.Fatal(err)
		}
	})
}
