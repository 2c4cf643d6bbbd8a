package relay

import (
	"encoding/binary"
	"fmt"
)

// H.264 NAL unit types and RTP payload structures (RFC 6184).
const (
	nalTypeMask  = 0x1f
	nalTypeSPS   = 7
	nalTypePPS   = 8
	nalTypeAUD   = 9
	nalTypeFill  = 12
	nalTypeSTAPA = 24
	nalTypeFUA   = 28

	stapAHeaderSize = 1
	fuAHeaderSize   = 2
)

// splitAnnexB returns the NAL units of an Annex-B access unit, without
// start codes and trailing zero bytes, skipping empty ones. It returns an
// error when au does not start with a start code (possibly after zero bytes).
func splitAnnexB(au []byte) ([][]byte, error) {
	start := -1
	for i := 0; i+2 < len(au); i++ {
		if au[i] != 0 {
			break
		}
		if au[i+1] == 0 && au[i+2] == 1 {
			start = i + 3
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: access unit of %d bytes does not start with an Annex-B start code", errBadAccessUnit, len(au))
	}
	var nals [][]byte
	for start <= len(au) {
		end := len(au)
		next := len(au)
		for i := start; i+2 < len(au); i++ {
			// A start code is 00 00 01; NAL payloads never contain it
			// (emulation prevention), so the first match ends the unit.
			if au[i+2] > 1 {
				i += 2
				continue
			}
			if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
				end, next = i, i+3
				break
			}
		}
		nal := au[start:end]
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 {
			nals = append(nals, nal)
		}
		if next >= len(au) {
			break
		}
		start = next
	}
	return nals, nil
}

// nalFormat is what an RTP payload format of NAL units (H.264, RFC 6184;
// H.265, RFC 7798) needs from packetizeNALs.
type nalFormat struct {
	hdrSize   int // the NAL unit header's size, also the aggregation packet's
	fuHdrSize int // a fragmentation unit's headers
	// drop reports whether a NAL unit is not sent.
	drop func(n []byte) bool
	// fuHeader appends the headers of a fragment of NAL unit n.
	fuHeader func(b, n []byte, first, last bool) []byte
	// aggHeader appends the header of an aggregation packet of nals.
	aggHeader func(b []byte, nals [][]byte) []byte
}

// aggLenSize is the size of each unit's length in an aggregation packet
// (STAP-A, AP).
const aggLenSize = 2

var h264Format = nalFormat{
	hdrSize:   stapAHeaderSize,
	fuHdrSize: fuAHeaderSize,
	drop: func(n []byte) bool {
		t := n[0] & nalTypeMask
		return t == nalTypeAUD || t == nalTypeFill
	},
	fuHeader: func(b, n []byte, first, last bool) []byte {
		fu := n[0] & nalTypeMask
		if first {
			fu |= 0x80
		}
		if last {
			fu |= 0x40
		}
		return append(b, n[0]&0xe0|nalTypeFUA, fu)
	},
	aggHeader: func(b []byte, nals [][]byte) []byte {
		var f, nri byte
		for _, m := range nals {
			f |= m[0] & 0x80
			nri = max(nri, m[0]&0x60)
		}
		return append(b, f|nri|nalTypeSTAPA)
	},
}

// packetizeH264 splits an Annex-B access unit into RTP payloads of at most
// mtu bytes: consecutive small NAL units (typically SPS, PPS and SEI before
// an IDR) are aggregated into STAP-A packets, a NAL unit that fits is sent as
// is, a larger one as FU-A fragments. Access unit delimiters and filler data
// are dropped. All payloads share one allocation. It returns the payloads
// and the number of NAL units carried.
//
// Unlike pion's H264Payloader it keeps no state across access units and
// never drops parameter sets (pion's drops SPS/PPS whose STAP-A would not
// fit); pion's depacketizer is what the tests check it against.
func packetizeH264(au []byte, mtu int) ([][]byte, int, error) {
	return packetizeNALs(au, mtu, &h264Format)
}

// packetizeNALs is packetizeH264 and packetizeH265 for the format f.
func packetizeNALs(au []byte, mtu int, f *nalFormat) ([][]byte, int, error) {
	if mtu < f.fuHdrSize+1 {
		return nil, 0, fmt.Errorf("%w: mtu %d", errBadAccessUnit, mtu)
	}
	all, err := splitAnnexB(au)
	if err != nil {
		return nil, 0, err
	}
	nals := all[:0]
	for _, n := range all {
		if !f.drop(n) {
			nals = append(nals, n)
		}
	}
	if len(nals) == 0 {
		return nil, 0, nil
	}

	// Size the arena and packet list: at most one aggregation header and
	// one length per NAL unit, or the headers of each fragment.
	size, count := 0, 0
	frag := mtu - f.fuHdrSize
	for _, n := range nals {
		if len(n) > mtu {
			body := len(n) - f.hdrSize
			k := (body + frag - 1) / frag
			size += body + k*f.fuHdrSize
			count += k
		} else {
			size += len(n) + f.hdrSize + aggLenSize
			count++
		}
	}
	arena := make([]byte, 0, size)
	payloads := make([][]byte, 0, count)

	for i := 0; i < len(nals); {
		n := nals[i]
		if len(n) > mtu {
			body := n[f.hdrSize:]
			for off := 0; off < len(body); off += frag {
				end := min(off+frag, len(body))
				p := len(arena)
				arena = f.fuHeader(arena, n, off == 0, end == len(body))
				arena = append(arena, body[off:end]...)
				payloads = append(payloads, arena[p:len(arena):len(arena)])
			}
			i++
			continue
		}
		// Aggregate following NAL units while the aggregation packet fits.
		j, agg := i+1, f.hdrSize+aggLenSize+len(n)
		for j < len(nals) && agg+aggLenSize+len(nals[j]) <= mtu {
			agg += aggLenSize + len(nals[j])
			j++
		}
		p := len(arena)
		if j-i == 1 {
			arena = append(arena, n...)
		} else {
			arena = f.aggHeader(arena, nals[i:j])
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
