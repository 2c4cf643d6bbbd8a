package whepbench

import "encoding/binary"

// rtpHeader is what a viewer needs of an RTP packet; payload aliases the
// packet.
type rtpHeader struct {
	marker    bool
	seq       uint16
	timestamp uint32
	payload   []byte
}

// parseRTP parses the fixed header, CSRCs, extension and padding of an RTP
// packet without allocating. ok is false for a malformed packet.
func parseRTP(b []byte) (h rtpHeader, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return h, false
	}
	h.marker = b[1]&0x80 != 0
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.timestamp = binary.BigEndian.Uint32(b[4:])
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension
		if len(b) < off+4 {
			return h, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: the last byte counts it
		if end == 0 {
			return h, false
		}
		end -= int(b[end-1])
	}
	if off > end {
		return h, false
	}
	h.payload = b[off:end]
	return h, true
}
