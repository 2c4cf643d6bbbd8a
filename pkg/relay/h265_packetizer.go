package relay

import (
	"encoding/binary"
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

	h265APLenSize    = 2
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
	if mtu < h265FUHeaderSize+1 {
		return nil, 0, fmt.Errorf("%w: mtu %d", errBadAccessUnit, mtu)
	}
	all, err := splitAnnexB(au)
	if err != nil {
		return nil, 0, err
	}
	nals := all[:0]
	for _, n := range all {
		// A unit of its header alone carries nothing (receivers such as
		// pion's reject it).
		if len(n) <= h265NALHeaderSize {
			continue
		}
		if t := h265Type(n[0]); t == h265TypeAUD || t == h265TypeFD {
			continue
		}
		nals = append(nals, n)
	}
	if len(nals) == 0 {
		return nil, 0, nil
	}

	// Size the arena and packet list: at most one AP header and one length
	// per NAL unit, or three header bytes per fragment.
	size, count := 0, 0
	frag := mtu - h265FUHeaderSize
	for _, n := range nals {
		if len(n) > mtu {
			body := len(n) - h265NALHeaderSize
			k := (body + frag - 1) / frag
			size += body + k*h265FUHeaderSize
			count += k
		} else {
			size += len(n) + h265NALHeaderSize + h265APLenSize
			count++
		}
	}
	arena := make([]byte, 0, size)
	payloads := make([][]byte, 0, count)

	for i := 0; i < len(nals); {
		n := nals[i]
		if len(n) > mtu {
			// The payload header is the NAL unit's with type FU.
			hdr0, hdr1 := n[0]&0x81|h265TypeFU<<1, n[1]
			typ := h265Type(n[0])
			body := n[h265NALHeaderSize:]
			for off := 0; off < len(body); off += frag {
				end := min(off+frag, len(body))
				fu := typ
				if off == 0 {
					fu |= 0x80
				}
				if end == len(body) {
					fu |= 0x40
				}
				p := len(arena)
				arena = append(arena, hdr0, hdr1, fu)
				arena = append(arena, body[off:end]...)
				payloads = append(payloads, arena[p:len(arena):len(arena)])
			}
			i++
			continue
		}
		// Aggregate following NAL units while the AP fits.
		j, agg := i+1, h265NALHeaderSize+h265APLenSize+len(n)
		for j < len(nals) && agg+h265APLenSize+len(nals[j]) <= mtu {
			agg += h265APLenSize + len(nals[j])
			j++
		}
		p := len(arena)
		if j-i == 1 {
			arena = append(arena, n...)
		} else {
			// F is set if any unit's is; LayerId and TID are the lowest.
			var f byte
			layer, tid := byte(0x3f), byte(7)
			for _, m := range nals[i:j] {
				f |= m[0] & 0x80
				layer = min(layer, (m[0]&1)<<5|m[1]>>3)
				tid = min(tid, m[1]&7)
			}
			arena = append(arena, f|h265TypeAP<<1|layer>>5, (layer&0x1f)<<3|tid)
			for _, m := range nals[i:j] {
				arena = binary.BigEndian.AppendUint16(arena, uint16(len(m)))
				arena = append(arena, m...)
			}
		}
		payloads = append(payloads, arena[p:len(arena):len(arena)])
		i = j
	}
	return payloads, len(nals), nil
}
