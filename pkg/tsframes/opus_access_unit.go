package tsframes

import (
	"errors"
	"fmt"
)

// opusPrefix is the 11-bit start of an opus_control_header (the ETSI draft
// "Opus in MPEG-2 TS", v0.1.3, table 6-7).
const opusPrefix = 0x3ff

// errOpusAccessUnit is wrapped by the errors of nextOpusAccessUnit.
var errOpusAccessUnit = errors.New("bad Opus access unit")

// nextOpusAccessUnit reads the opus_access_unit at the start of data: its
// control header (prefix, trim and extension flags, payload size) and the
// Opus packet that follows. It returns the packet, which may be empty (an
// encoder's empty packet: the caller drops and counts it), and the number of
// bytes read. The header's trims and extension are skipped.
func nextOpusAccessUnit(data []byte) (packet []byte, n int, err error) {
	if len(data) < 3 {
		return nil, 0, fmt.Errorf("%w: %d bytes left, a control header needs at least 3", errOpusAccessUnit, len(data))
	}
	if prefix := uint16(data[0])<<3 | uint16(data[1])>>5; prefix != opusPrefix {
		return nil, 0, fmt.Errorf("%w: control header prefix %#x, want %#x", errOpusAccessUnit, prefix, opusPrefix)
	}
	startTrim, endTrim, extension := data[1]&0x10 != 0, data[1]&0x08 != 0, data[1]&0x04 != 0
	pos, size := 2, 0
	for {
		if pos >= len(data) {
			return nil, 0, fmt.Errorf("%w: payload size cut short", errOpusAccessUnit)
		}
		b := data[pos]
		pos++
		size += int(b)
		if b != 0xff {
			break
		}
	}
	if startTrim {
		pos += 2
	}
	if endTrim {
		pos += 2
	}
	if extension {
		if pos >= len(data) {
			return nil, 0, fmt.Errorf("%w: control extension cut short", errOpusAccessUnit)
		}
		pos += 1 + int(data[pos])
	}
	if pos+size > len(data) {
		return nil, 0, fmt.Errorf("%w: payload of %d bytes, %d left", errOpusAccessUnit, size, max(len(data)-pos, 0))
	}
	return data[pos : pos+size], pos + size, nil
}
