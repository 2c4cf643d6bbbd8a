package whip

import (
	"bytes"
	"testing"
)

// Inline NAL units of the cases.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	testP   = []byte{0x41, 0x9a, 0x21, 0x6c}
	testAUD = []byte{0x09, 0xf0}
)

// rtpIn is one packet of a case: its payload, timestamp, marker, and
// whether packets before it were lost.
type rtpIn struct {
	payload []byte
	ts      uint32
	marker  bool
	lost    bool
}

func stapA(nalus ...[]byte) []byte {
	b := []byte{0x18}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// fuA splits nalu into FU-A packets of at most size payload bytes.
func fuA(nalu []byte, size int) [][]byte {
	var out [][]byte
	body := nalu[1:]
	for i := 0; i < len(body); i += size {
		end := min(i+size, len(body))
		hdr := nalu[0] & 0x1F
		if i == 0 {
			hdr |= 0x80
		}
		if end == len(body) {
			hdr |= 0x40
		}
		out = append(out, append([]byte{nalu[0]&0xE0 | naluFUA, hdr}, body[i:end]...))
	}
	return out
}

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = appendNALU(b, n)
	}
	return b
}

// depacketizerCases feed the decode test and the fuzz seeds.
var depacketizerCases = []struct {
	name string
	in   []rtpIn
	want []accessUnit
}{
	{
		name: "single NAL units",
		in: []rtpIn{
			{payload: testSPS, ts: 0}, {payload: testPPS, ts: 0}, {payload: testIDR, ts: 0, marker: true},
			{payload: testP, ts: 3000, marker: true},
		},
		want: []accessUnit{
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 0},
			{data: annexB(testP), ts: 3000},
		},
	},
	{
		name: "STAP-A and FU-A",
		in: append(append([]rtpIn{{payload: stapA(testAUD, testSPS, testPPS), ts: 90}},
			rtpIns(fuA(testIDR, 2), 90)...), rtpIn{payload: testP, ts: 3090, marker: true}),
		want: []accessUnit{
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 90},
			{data: annexB(testP), ts: 3090},
		},
	},
	{
		name: "timestamp change ends an access unit without marker",
		in: []rtpIn{
			{payload: stapA(testSPS, testPPS, testIDR), ts: 0},
			{payload: testP, ts: 3000},
			{payload: testP, ts: 6000, marker: true},
		},
		want: []accessUnit{
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 0},
			{data: annexB(testP), ts: 3000},
			{data: annexB(testP), ts: 6000},
		},
	},
	{
		name: "SPS and PPS repeated before every IDR",
		in: []rtpIn{
			{payload: stapA(testSPS, testPPS, testIDR), ts: 0, marker: true},
			{payload: testIDR, ts: 3000, marker: true},
		},
		want: []accessUnit{
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 0},
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 3000},
		},
	},
	{
		name: "nothing before the first IDR",
		in: []rtpIn{
			{payload: testP, ts: 0, marker: true},
			{payload: stapA(testSPS, testPPS), ts: 3000},
			{payload: testIDR, ts: 3000, marker: true},
		},
		want: []accessUnit{{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 3000}},
	},
	{
		name: "IDR without SPS is dropped",
		in:   []rtpIn{{payload: testIDR, ts: 0, marker: true}, {payload: testP, ts: 3000, marker: true}},
	},
	{
		name: "a loss drops up to the next IDR",
		in: []rtpIn{
			{payload: stapA(testSPS, testPPS, testIDR), ts: 0, marker: true},
			{payload: testP, ts: 3000, marker: true, lost: true},
			{payload: testP, ts: 6000, marker: true},
			{payload: testIDR, ts: 9000, marker: true},
			{payload: testP, ts: 12000, marker: true},
		},
		want: []accessUnit{
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 0},
			{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 9000},
			{data: annexB(testP), ts: 12000},
		},
	},
	{
		name: "FU-A without its start",
		in: []rtpIn{
			{payload: stapA(testSPS, testPPS, testIDR), ts: 0, marker: true},
			{payload: fuA(testP, 1)[1], ts: 3000},
			{payload: fuA(testP, 1)[2], ts: 3000, marker: true},
			{payload: testP, ts: 6000, marker: true},
		},
		want: []accessUnit{{data: annexB(testSPS, testPPS, testIDR), key: true, ts: 0}},
	},
	{
		name: "malformed payloads",
		in: []rtpIn{
			{payload: []byte{}, ts: 0},
			{payload: []byte{0x18, 0x00}, ts: 0},
			{payload: []byte{0x18, 0x00, 0x09, 0x67}, ts: 0},
			{payload: []byte{0x1c}, ts: 0},
			{payload: []byte{0x19, 0x00}, ts: 0},
			{payload: []byte{0x1f}, ts: 0, marker: true},
		},
	},
}

func rtpIns(payloads [][]byte, ts uint32) []rtpIn {
	out := make([]rtpIn, len(payloads))
	for i, p := range payloads {
		out[i] = rtpIn{payload: p, ts: ts, marker: false}
	}
	return out
}

func TestH264DepacketizerAccessUnits(t *testing.T) {
	for _, c := range depacketizerCases {
		t.Run(c.name, func(t *testing.T) {
			var d h264Depacketizer
			var got []accessUnit
			for _, p := range c.in {
				got = d.push(got, p.payload, p.ts, p.marker, p.lost)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d access units, want %d: %+v", len(got), len(c.want), got)
			}
			for i := range got {
				if !bytes.Equal(got[i].data, c.want[i].data) || got[i].key != c.want[i].key || got[i].ts != c.want[i].ts {
					t.Errorf("access unit %d: got key=%v ts=%d %x, want key=%v ts=%d %x", i,
						got[i].key, got[i].ts, got[i].data, c.want[i].key, c.want[i].ts, c.want[i].data)
				}
			}
		})
	}
}

func TestH264DepacketizerProfileLevelID(t *testing.T) {
	var d h264Depacketizer
	d.push(nil, stapA(testSPS, testPPS, testIDR), 0, true, false)
	if !d.takeSPSChange() || d.profileLevelID() != "42c01f" {
		t.Fatalf("profile-level-id %q", d.profileLevelID())
	}
	d.push(nil, stapA(testSPS, testPPS, testIDR), 3000, true, false)
	if d.takeSPSChange() {
		t.Fatal("the same SPS again reported as a change")
	}
}

func TestH264DepacketizerLimits(t *testing.T) {
	var d h264Depacketizer
	d.push(nil, stapA(testSPS, testPPS), 0, false, false)
	for range maxNALUsPerAccessUnit + 1 {
		d.push(nil, testIDR, 0, false, false)
	}
	if got := d.push(nil, testIDR, 0, true, false); len(got) != 0 || d.errs == 0 {
		t.Fatalf("an access unit of %d NAL units: %d delivered, %d errors", maxNALUsPerAccessUnit+2, len(got), d.errs)
	}
}

// FuzzH264Depacketizer feeds packets cut from the input: each starts with a
// flags byte (bit 0 marker, bit 1 lost, bit 2 new timestamp) and a length.
func FuzzH264Depacketizer(f *testing.F) {
	for _, c := range depacketizerCases {
		var b []byte
		var ts uint32
		for _, p := range c.in {
			flags := byte(0)
			if p.marker {
				flags |= 1
			}
			if p.lost {
				flags |= 2
			}
			if p.ts != ts {
				flags |= 4
				ts = p.ts
			}
			b = append(b, flags, byte(len(p.payload)))
			b = append(b, p.payload...)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d h264Depacketizer
		var ts uint32
		for len(b) >= 2 {
			flags, n := b[0], int(b[1])
			b = b[2:]
			n = min(n, len(b))
			if flags&4 != 0 {
				ts += 3000
			}
			for _, au := range d.push(nil, b[:n], ts, flags&1 != 0, flags&2 != 0) {
				if len(au.data) < 5 || !bytes.HasPrefix(au.data, []byte{0, 0, 0, 1}) {
					t.Fatalf("access unit without a start code: %x", au.data)
				}
				if au.key && au.data[4]&0x1F != 7 {
					t.Fatalf("key access unit without the SPS first: %x", au.data)
				}
			}
			b = b[n:]
		}
	})
}
