package whepbench

import (
	"testing"

	"github.com/pion/rtp/codecs"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func annexB(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

func slice(typ byte, size int) []byte {
	b := make([]byte, size)
	b[0] = 0x60 | typ
	for i := 1; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// packetize splits an access unit as pion's payloader does (STAP-A for SPS
// and PPS, FU-A for large slices).
func packetize(au []byte, mtu uint16) [][]byte {
	var p codecs.H264Payloader
	return p.Payload(mtu, au)
}

func TestKeyframeDetector(t *testing.T) {
	idrAU := packetize(annexB(testSPS, testPPS, slice(nalIDR, 1000)), 200)
	if len(idrAU) < 6 || idrAU[0][0]&0x1f != nalSTAPA || idrAU[1][0]&0x1f != nalFUA {
		t.Fatalf("fixture: %d packets, first types %d %d; want STAP-A then FU-A", len(idrAU), idrAU[0][0]&0x1f, idrAU[1][0]&0x1f)
	}
	pAU := packetize(annexB(slice(1, 500)), 200)
	bareIDR := packetize(annexB(slice(nalIDR, 100)), 200) // single NAL, no SPS/PPS
	twoSlices := packetize(annexB(testSPS, testPPS, slice(nalIDR, 50), slice(nalIDR, 50)), 1200)

	type step struct {
		payloads [][]byte
		skip     int // index of a packet lost (-1: none)
		wantKey  bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"complete IDR", []step{{idrAU, -1, true}}},
		{"IDR then P", []step{{idrAU, -1, true}, {pAU, -1, false}}},
		{"P first, then IDR", []step{{pAU, -1, false}, {idrAU, -1, true}}},
		{"lost FU-A middle", []step{{idrAU, 3, false}, {pAU, -1, false}, {idrAU, -1, true}}},
		{"lost FU-A start", []step{{idrAU, 1, false}}},
		{"lost STAP-A, no SPS yet", []step{{idrAU, 0, false}}},
		{"bare IDR without SPS/PPS", []step{{bareIDR, -1, false}}},
		{"bare IDR after parameter sets", []step{{pAU, -1, false}, {twoSlices, -1, true}, {bareIDR, -1, true}}},
		{"single-packet STAP-A access unit", []step{{twoSlices, -1, true}}},
	}
	for _, c := range cases {
		d := newKeyframeDetector()
		seq := uint16(65530) // wraps inside the test
		for si, s := range c.steps {
			var end, key bool
			ends := 0
			for i, p := range s.payloads {
				last := i == len(s.payloads)-1
				if i == s.skip {
					seq++
					if last {
						t.Fatalf("%s: cannot skip the marker packet", c.name)
					}
					continue
				}
				e, k := d.push(seq, last, p)
				seq++
				if e {
					ends++
					end, key = e, k
				}
			}
			if ends != 1 || !end || key != s.wantKey {
				t.Errorf("%s step %d: %d ends, key %v; want 1 end, key %v", c.name, si, ends, key, s.wantKey)
			}
		}
	}
}

func TestKeyframeDetectorMalformed(t *testing.T) {
	idrAU := packetize(annexB(testSPS, testPPS, slice(nalIDR, 1000)), 200)
	bad := map[string][]byte{
		"empty":               {},
		"STAP-A cut":          {nalSTAPA, 0, 10, 0x65},
		"STAP-A zero size":    {nalSTAPA, 0, 0},
		"STAP-A one byte":     {nalSTAPA, 0},
		"FU-A without header": {nalFUA},
		"FU-A middle alone":   {nalFUA, 0x05, 1, 2},
	}
	for name, p := range bad {
		d := newKeyframeDetector()
		seq := uint16(0)
		push := func(p []byte, marker bool) (bool, bool) { e, k := d.push(seq, marker, p); seq++; return e, k }
		// Parameter sets and the IDR, then the malformed packet as the
		// marker packet of the same access unit.
		for _, q := range idrAU[:len(idrAU)-1] {
			push(q, false)
		}
		push(idrAU[len(idrAU)-1], false)
		if end, key := push(p, true); !end || key {
			t.Errorf("%s: end %v key %v; want end, not key", name, end, key)
		}
		// The detector recovers at the next access unit.
		for i, q := range idrAU {
			if end, key := push(q, i == len(idrAU)-1); end && !key {
				t.Errorf("%s: the next IDR access unit is not a keyframe", name)
			}
		}
	}
}

// TestViewerPathAllocations: the per-packet work of a viewer (header parse
// and keyframe detection) allocates nothing.
func TestViewerPathAllocations(t *testing.T) {
	au := packetize(annexB(testSPS, testPPS, slice(nalIDR, 3000)), 1200)
	pkts := make([][]byte, len(au))
	for i, p := range au {
		pkts[i] = append([]byte{0x80, 0x60, 0, byte(i), 0, 0, 0, 9, 0, 0, 0, 7}, p...)
	}
	pkts[len(pkts)-1][1] |= 0x80 // marker
	d := newKeyframeDetector()
	seq := uint16(0)
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range pkts {
			h, ok := parseRTP(b)
			if !ok {
				t.Fatal("parse")
			}
			d.push(seq, h.marker, h.payload)
			seq++
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per access unit", allocs)
	}
}

func BenchmarkViewerPath(b *testing.B) {
	au := packetize(annexB(testSPS, testPPS, slice(nalIDR, 3000)), 1200)
	pkts := make([][]byte, len(au))
	for i, p := range au {
		pkts[i] = append([]byte{0x80, 0x60, 0, byte(i), 0, 0, 0, 9, 0, 0, 0, 7}, p...)
	}
	pkts[len(pkts)-1][1] |= 0x80
	d := newKeyframeDetector()
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pkts {
			h, _ := parseRTP(p)
			d.push(seq, h.marker, h.payload)
			seq++
		}
	}
}
