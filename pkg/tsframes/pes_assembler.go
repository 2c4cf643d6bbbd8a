package tsframes

import (
	"errors"
	"fmt"
)

// PES assembly. The payloads of one elementary PID are appended to a buffer
// that is reused from one PES to the next (it keeps the capacity of the
// largest PES seen, at most MaxPESSize), so assembling costs one copy of
// each payload byte, whatever the PES size.
//
// A PES starts with a packet that has payload_unit_start_indicator set. It
// ends when its PES_packet_length is reached or, when that length is 0 (as
// for video), when the next PES of the PID starts. A PES that loses a
// packet (continuity counter gap) or grows beyond the size limit is dropped,
// and the packets that follow are ignored until the next PES starts.

// pesStream assembles the PES of one elementary PID.
type pesStream struct {
	pid   uint16
	codec Codec // CodecH264, CodecOpus, or a source audio codec (Options.SourceAudio)

	buf  []byte // the PES in progress, from its start code
	want int    // its total size from PES_packet_length; 0 when unknown
	// sized is set once the header's length field has been looked at.
	sized bool
	open  bool // a PES is in progress
}

// minPESBuffer is the first capacity of a PES buffer.
const minPESBuffer = 4096

// begin starts a new PES with the payload of its first packet.
func (st *pesStream) begin(payload []byte, limit int) {
	st.buf = st.buf[:0]
	st.want = 0
	st.sized = false
	st.open = true
	st.add(payload, limit)
}

// add appends payload to the PES in progress, growing the buffer by
// doubling (capped at limit, which the caller has checked len(buf)+len(payload)
// against).
func (st *pesStream) add(payload []byte, limit int) {
	need := len(st.buf) + len(payload)
	if need > cap(st.buf) {
		n := max(2*cap(st.buf), need, minPESBuffer)
		n = max(min(n, limit), need)
		b := make([]byte, len(st.buf), n)
		copy(b, st.buf)
		st.buf = b
	}
	st.buf = append(st.buf, payload...)
	if !st.sized && len(st.buf) >= 6 {
		st.sized = true
		if hasStartCode(st.buf) {
			if l := int(st.buf[4])<<8 | int(st.buf[5]); l > 0 {
				st.want = 6 + l
			}
		}
	}
}

// full reports whether the PES in progress reached its PES_packet_length.
func (st *pesStream) full() bool {
	return st.want > 0 && len(st.buf) >= st.want
}

// take ends the PES in progress and returns it (valid until the next begin),
// or an error when it is shorter than its PES_packet_length.
func (st *pesStream) take() ([]byte, error) {
	st.open = false
	if st.want > 0 {
		if len(st.buf) < st.want {
			return nil, fmt.Errorf("PES of %d bytes ends after %d", st.want, len(st.buf))
		}
		return st.buf[:st.want], nil
	}
	return st.buf, nil
}

// drop abandons the PES in progress.
func (st *pesStream) drop() {
	st.open = false
}

func hasStartCode(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && b[2] == 1
}

// PES stream_id values without the optional header (so without PTS).
const (
	streamIDPadding        = 0xBE
	streamIDPrivateStream2 = 0xBF
)

var errNoPTS = errors.New("PTS is missing")

// parsePES reads the header of a whole PES: its PTS and DTS (raw 33-bit
// values; DTS is the PTS when absent) and its payload (aliasing pes).
func parsePES(pes []byte) (pts, dts int64, data []byte, err error) {
	if !hasStartCode(pes) {
		return 0, 0, nil, errors.New("PES start code missing")
	}
	if len(pes) < 9 {
		return 0, 0, nil, fmt.Errorf("PES header truncated (%d bytes)", len(pes))
	}
	end := len(pes)
	if l := int(pes[4])<<8 | int(pes[5]); l > 0 {
		end = 6 + l
		if end > len(pes) {
			return 0, 0, nil, fmt.Errorf("PES of %d bytes ends after %d", end, len(pes))
		}
	}
	if id := pes[3]; id == streamIDPadding || id == streamIDPrivateStream2 {
		return 0, 0, nil, fmt.Errorf("%w: stream_id 0x%02x", errNoPTS, id)
	}
	if end < 9 {
		return 0, 0, nil, fmt.Errorf("PES header truncated (%d bytes)", end)
	}
	hl := int(pes[8])
	start := 9 + hl
	if start > end {
		return 0, 0, nil, fmt.Errorf("PES_header_data_length %d beyond the PES (%d bytes)", hl, end)
	}
	switch pes[7] >> 6 {
	case 2:
		if hl < 5 {
			return 0, 0, nil, fmt.Errorf("PES_header_data_length %d too short for the PTS", hl)
		}
		pts = pesClock(pes[9:14])
		dts = pts
	case 3:
		if hl < 10 {
			return 0, 0, nil, fmt.Errorf("PES_header_data_length %d too short for PTS and DTS", hl)
		}
		pts = pesClock(pes[9:14])
		dts = pesClock(pes[14:19])
	default:
		return 0, 0, nil, errNoPTS
	}
	return pts, dts, pes[start:end], nil
}

// pesClock decodes a 5-byte PTS or DTS field (marker bits ignored).
func pesClock(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
