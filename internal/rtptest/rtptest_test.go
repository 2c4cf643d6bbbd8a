package rtptest

import (
	"testing"

	"github.com/pion/rtp"
)

func TestTrack(t *testing.T) {
	h := func(seq uint16, ts uint32, marker bool) rtp.Header {
		return rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}
	}
	for _, tc := range []struct {
		name  string
		hdrs  []rtp.Header
		video bool
		want  Check
	}{
		{"clean video across the wrap", []rtp.Header{h(65534, 0, false), h(65535, 0, true), h(0, 3000, true), h(1, 6000, false)}, true,
			Check{Packets: 4}},
		{"lost", []rtp.Header{h(1, 0, true), h(3, 6000, true)}, true, Check{Packets: 2, Lost: 1, BadTS: 1}},
		{"late", []rtp.Header{h(1, 0, true), h(3, 6000, true), h(2, 3000, true)}, true, Check{Packets: 3, Late: 1, BadTS: 1}},
		{"duplicated", []rtp.Header{h(1, 0, true), h(2, 3000, true), h(2, 3000, true)}, true, Check{Packets: 3, Duplicated: 1}},
		{"incomplete AU", []rtp.Header{h(1, 0, false), h(2, 3000, true)}, true, Check{Packets: 2, Incomplete: 1}},
		{"stray marker", []rtp.Header{h(1, 0, true), h(2, 0, true)}, true, Check{Packets: 2, Markers: 1}},
		{"audio timestamp repeated", []rtp.Header{h(1, 0, false), h(2, 0, false)}, false, Check{Packets: 2, BadTS: 1}},
		{"empty", nil, true, Check{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Track(tc.hdrs, tc.video, 3000)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if got.Clean() != (got == Check{Packets: got.Packets}) {
				t.Errorf("Clean() = %v for %v", got.Clean(), got)
			}
		})
	}
}
