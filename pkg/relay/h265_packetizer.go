package relay

import (
	"fmt"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// H.265 NAL unit types and RTP payload structures (RFC 7798).
const (
	h265NALHeaderSize = 2
	h265TypeAUD       = 35
	h265TypeFD        = 38
	h265TypeAP        = 48
	h265TypeFU        = 49

	h265FUHeaderSize = 3 // payload header (2) and FU header (1)
)

// h265Type is the type of an H.265 NAL unit whose header starts with b.
func h265Type(b byte) byte { return b >> 1 & 0x3f }

// packetizeVideo splits an Annex-B access unit of codec c (H.264 or H.265)
// into RTP payloads of at most mtu bytes (see packetizeH264 and
// packetizeH265).
func packetizeVideo(c tsframes.Codec, au []byte, mtu int) ([][]byte, int, error) {
	switch c {
	case tsframes.CodecH264:
		return packetizeH264(au, mtu)
	case tsframes.CodecH265:
		return packetizeH265(au, mtu)
	}
	return nil, 0, fmt.Errorf("%w: video codec %q", errBadAccessUnit, c)
}

// packetizeH265 splits an Annex-B H.265 access unit into RTP payloads of at
// most mtu bytes (RFC 7798, without DONL: sprop-max-don-diff is 0):
// consecutive small NAL units (VPS, SPS, PPS and SEI before an IRAP picture)
// are aggregated into aggregation packets, a NAL unit that fits is sent as
// a single NAL unit packet, a larger one as fragmentation units. Access unit
// delimiters, filler data and units without payload are dropped. All payloads share one
// allocation. It returns the payloads and the number of NAL units carried.
//
// Like packetizeH264 it keeps no state across access units and never drops
// parameter sets; pion's H265Packet depacketizer is what the tests check it
// against.
func packetizeH265(au []byte, mtu int) ([][]byte, int, error) {
	return packetizeNALs(au, mtu, &h265Format)
}

var h265Format = nalFormat{
	hdrSize:   h265NALHeaderSize,
	fuHdrSize: h265FUHeaderSize,
	drop: func(n []byte) bool {
		// A unit of its header alone carries nothing (receivers such as
		// pion's reject it).
		if len(n) <= h265NALHeaderSize {
			return true
		}
		t := h265Type(n[0])
		return t == h265TypeAUD || t == h265TypeFD
	},
	fuHeader: func(b, n []byte, first, last bool) []byte {
		// The payload header is the NAL unit's with type FU.
		fu := h265Type(n[0])
		if first {
			fu |= 0x80
		}
		if last {
			fu |= 0x40
		}
		return append(b, n[0]&0x81|h265TypeFU<<1, n[1], fu)
	},
	aggHeader: func(b []byte, nals [][]byte) []byte {
		// F is set if any unit's is; LayerId and TID are the lowest.
		var f byte
		layer, tid := byte(0x3f), byte(7)
		for _, m := range nals {
			f |= m[0] & 0x80
			layer = min(layer, (m[0]&1)<<5|m[1]>>3)
			tid = min(tid, m[1]&7)
		}
		return append(b, f|h265TypeAP<<1|layer>>5, (layer&0x1f)<<3|tid)
	},
}
