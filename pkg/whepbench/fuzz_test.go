package whepbench

import (
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
)

// FuzzNewSchedule: any input gives a Schedule or ErrTS, never a panic, and
// a Schedule's bursts tile its data in time order.
func FuzzNewSchedule(f *testing.F) {
	av := tstest.Read(f, "av.ts")
	f.Add(av[:40*tsPacketSize])
	f.Add(tstest.Read(f, "audio.ts")[:20*tsPacketSize])
	f.Add([]byte{0x47, 0x40, 0, 0x10, 0, 0, 0xb0, 0x0d})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := NewSchedule(data)
		if err != nil {
			return
		}
		off := 0
		for i, b := range s.bursts {
			if b.off != off || b.end < b.off || (i > 0 && b.at < s.bursts[i-1].at) {
				t.Fatalf("burst %d = %+v after offset %d", i, b, off)
			}
			off = b.end
		}
		if off != s.Bytes() {
			t.Fatalf("bursts end at %d of %d", off, s.Bytes())
		}
		for _, au := range s.aus {
			if au.last < 0 || au.last >= len(s.bursts) || au.next >= len(s.bursts) {
				t.Fatalf("AU %+v out of %d bursts", au, len(s.bursts))
			}
		}
	})
}

// FuzzViewerPath: any RTP packet is parsed or refused, and any payload goes
// through the keyframe detector, without a panic.
func FuzzViewerPath(f *testing.F) {
	f.Add([]byte{0x80, 0xe0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, nalSTAPA, 0, 2, 0x67, 0x42, 0, 1, 0x68})
	f.Add([]byte{0x90, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, nalFUA, 0x85, 1})
	f.Add([]byte{0xa0, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0x65, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newKeyframeDetector()
		h, ok := parseRTP(b)
		if !ok {
			return
		}
		if len(h.payload) > len(b) {
			t.Fatalf("payload of %d bytes in a %d-byte packet", len(h.payload), len(b))
		}
		d.push(h.seq, h.marker, h.payload)
		d.push(h.seq+1, true, h.payload)
	})
}
