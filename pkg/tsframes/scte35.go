package tsframes

import (
	"encoding/binary"
	"fmt"
)

// SCTE-35 (ANSI/SCTE 35) splice_info_section: enough to validate a section
// and to know when the splice it signals applies. The section itself is
// passed on untouched for players to read the rest.

const (
	// StreamTypeSCTE35 is the PMT stream_type of an SCTE-35 PID.
	StreamTypeSCTE35 = 0x86
	// tableIDSCTE35 is the table_id of a splice_info_section.
	tableIDSCTE35 = 0xFC
	// MaxSCTE35Section is the largest splice_info_section accepted: 3 bytes
	// of header and a section_length of at most 4093.
	MaxSCTE35Section = 4096
	// minSCTE35Section is the smallest possible section: the fixed fields,
	// an empty command, no descriptors and the CRC.
	minSCTE35Section = 20
)

// SpliceCommand is a splice_command_type.
type SpliceCommand uint8

// Splice commands (SCTE 35 table 7).
const (
	SpliceNull           SpliceCommand = 0x00
	SpliceSchedule       SpliceCommand = 0x04
	SpliceInsert         SpliceCommand = 0x05
	TimeSignal           SpliceCommand = 0x06
	BandwidthReservation SpliceCommand = 0x07
	PrivateCommand       SpliceCommand = 0xFF
)

// String is the command's name in the standard's spelling (splice_insert).
func (c SpliceCommand) String() string {
	switch c {
	case SpliceNull:
		return "splice_null"
	case SpliceSchedule:
		return "splice_schedule"
	case SpliceInsert:
		return "splice_insert"
	case TimeSignal:
		return "time_signal"
	case BandwidthReservation:
		return "bandwidth_reservation"
	case PrivateCommand:
		return "private_command"
	}
	return fmt.Sprintf("reserved_0x%02x", uint8(c))
}

// SpliceInfo is what whepcast reads of a splice_info_section.
type SpliceInfo struct {
	Command SpliceCommand
	// Timed is set when the section gives a splice time (SpliceTime);
	// otherwise the splice is immediate (splice_immediate_flag, or a
	// splice_time without time_specified_flag), or cancelled.
	Timed bool
	// SpliceTime is pts_time plus pts_adjustment, modulo 2^33 (90 kHz), when
	// Timed.
	SpliceTime int64
	// PTSAdjustment is the section's pts_adjustment (33 bits, 90 kHz).
	PTSAdjustment int64
	// EventID, Cancel and OutOfNetwork are splice_insert's
	// splice_event_id, splice_event_cancel_indicator and
	// out_of_network_indicator (zero for other commands).
	EventID      uint32
	Cancel       bool
	OutOfNetwork bool
	// Duration is splice_insert's break_duration (90 kHz), 0 when absent;
	// AutoReturn its auto_return flag.
	Duration   int64
	AutoReturn bool
}

// ParseSpliceInfo validates sec, one whole splice_info_section (table_id
// 0xFC, section_length matching len(sec), CRC-32), and reads its command.
// splice_insert and time_signal are read in full; other commands only by
// type. Encrypted sections are refused. Errors wrap ErrSCTE35.
func ParseSpliceInfo(sec []byte) (SpliceInfo, error) {
	if len(sec) < minSCTE35Section {
		return SpliceInfo{}, fmt.Errorf("%w: section of %d bytes, below %d", ErrSCTE35, len(sec), minSCTE35Section)
	}
	if sec[0] != tableIDSCTE35 {
		return SpliceInfo{}, fmt.Errorf("%w: table_id 0x%02x, want 0x%02x", ErrSCTE35, sec[0], tableIDSCTE35)
	}
	if n := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2])); n != len(sec) {
		return SpliceInfo{}, fmt.Errorf("%w: section_length %d for a section of %d bytes", ErrSCTE35, n-3, len(sec))
	}
	if CRC32MPEG(sec) != 0 {
		return SpliceInfo{}, fmt.Errorf("%w: CRC mismatch", ErrSCTE35)
	}
	if sec[4]&0x80 != 0 {
		return SpliceInfo{}, fmt.Errorf("%w: encrypted section", ErrSCTE35)
	}
	si := SpliceInfo{
		PTSAdjustment: int64(sec[4]&0x01)<<32 | int64(binary.BigEndian.Uint32(sec[5:9])),
		Command:       SpliceCommand(sec[13]),
	}
	cmdLen := int(sec[11]&0x0F)<<8 | int(sec[12])
	body := sec[14 : len(sec)-4] // the command, the descriptors
	if cmdLen != 0xFFF {         // 0xFFF: legacy, length not given
		if cmdLen > len(body)-2 {
			return SpliceInfo{}, fmt.Errorf("%w: splice_command_length %d beyond the section", ErrSCTE35, cmdLen)
		}
		body = body[:cmdLen]
	}
	var err error
	switch si.Command {
	case SpliceInsert:
		err = si.readInsert(body)
	case TimeSignal:
		si.Timed, si.SpliceTime, _, err = readSpliceTime(body)
	}
	if err != nil {
		return SpliceInfo{}, fmt.Errorf("%w: %s: %w", ErrSCTE35, si.Command, err)
	}
	if si.Timed {
		si.SpliceTime = (si.SpliceTime + si.PTSAdjustment) & (tsPeriod - 1)
	}
	return si, nil
}

var errShort = fmt.Errorf("command truncated")

// readInsert reads a splice_insert() command.
func (si *SpliceInfo) readInsert(b []byte) error {
	if len(b) < 5 {
		return errShort
	}
	si.EventID = binary.BigEndian.Uint32(b)
	si.Cancel = b[4]&0x80 != 0
	if si.Cancel {
		return nil
	}
	if len(b) < 6 {
		return errShort
	}
	flags := b[5]
	si.OutOfNetwork = flags&0x80 != 0
	program, duration, immediate := flags&0x40 != 0, flags&0x20 != 0, flags&0x10 != 0
	b = b[6:]
	switch {
	case program && !immediate:
		timed, t, n, err := readSpliceTime(b)
		if err != nil {
			return err
		}
		si.Timed, si.SpliceTime = timed, t
		b = b[n:]
	case !program:
		// Component mode: the first component's time stands for all.
		if len(b) < 1 {
			return errShort
		}
		count := int(b[0])
		b = b[1:]
		for i := range count {
			if len(b) < 1 {
				return errShort
			}
			b = b[1:] // component_tag
			if !immediate {
				timed, t, n, err := readSpliceTime(b)
				if err != nil {
					return err
				}
				if i == 0 {
					si.Timed, si.SpliceTime = timed, t
				}
				b = b[n:]
			}
		}
	}
	if duration {
		if len(b) < 5 {
			return errShort
		}
		si.AutoReturn = b[0]&0x80 != 0
		si.Duration = int64(b[0]&0x01)<<32 | int64(binary.BigEndian.Uint32(b[1:5]))
		b = b[5:]
	}
	if len(b) < 4 { // unique_program_id, avail_num, avails_expected
		return errShort
	}
	return nil
}

// readSpliceTime reads a splice_time(): whether a time is given, the
// 33-bit pts_time, and the bytes it took.
func readSpliceTime(b []byte) (timed bool, pts int64, n int, err error) {
	if len(b) < 1 {
		return false, 0, 0, errShort
	}
	if b[0]&0x80 == 0 {
		return false, 0, 1, nil
	}
	if len(b) < 5 {
		return false, 0, 0, errShort
	}
	return true, int64(b[0]&0x01)<<32 | int64(binary.BigEndian.Uint32(b[1:5])), 5, nil
}

// AppendSpliceInfo appends to b a splice_info_section carrying si: a
// splice_insert (program mode, with a break_duration when Duration is set)
// or a time_signal, immediate unless Timed (SpliceTime is then written as
// pts_time, less PTSAdjustment), no descriptors, with its CRC. Other commands
// are written with an empty body. It is the inverse of ParseSpliceInfo for
// what that reads.
func AppendSpliceInfo(b []byte, si SpliceInfo) []byte {
	var cmd []byte
	spliceTime := func(cmd []byte) []byte {
		if !si.Timed {
			return append(cmd, 0x7F)
		}
		t := (si.SpliceTime - si.PTSAdjustment) & (tsPeriod - 1)
		return append(cmd, 0xFE|byte(t>>32), byte(t>>24), byte(t>>16), byte(t>>8), byte(t))
	}
	switch si.Command {
	case SpliceInsert:
		cmd = binary.BigEndian.AppendUint32(cmd, si.EventID)
		if si.Cancel {
			cmd = append(cmd, 0xFF)
			break
		}
		cmd = append(cmd, 0x7F)
		flags := byte(0x40 | 0x0F) // program_splice_flag, reserved bits
		if si.OutOfNetwork {
			flags |= 0x80
		}
		if si.Duration > 0 {
			flags |= 0x20
		}
		if !si.Timed {
			flags |= 0x10
		}
		cmd = append(cmd, flags)
		if si.Timed {
			cmd = spliceTime(cmd)
		}
		if si.Duration > 0 {
			d := si.Duration & (tsPeriod - 1)
			first := byte(0x7E) | byte(d>>32)
			if si.AutoReturn {
				first |= 0x80
			}
			cmd = append(cmd, first, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
		}
		cmd = append(cmd, 0, 0, 0, 0) // unique_program_id, avail_num, avails_expected
	case TimeSignal:
		cmd = spliceTime(cmd)
	}
	start := len(b)
	length := 11 + len(cmd) + 2 + 4 // after section_length: fixed fields, command, descriptor loop, CRC
	adj := si.PTSAdjustment & (tsPeriod - 1)
	b = append(b, tableIDSCTE35, 0x30|byte(length>>8), byte(length), // SAP type 3: not specified
		0,             // protocol_version
		byte(adj>>32), // encrypted_packet 0, encryption_algorithm 0, pts_adjustment
		byte(adj>>24), byte(adj>>16), byte(adj>>8), byte(adj),
		0xFF,                         // cw_index
		0xFF, 0xF0|byte(len(cmd)>>8), // tier 0xFFF, splice_command_length
		byte(len(cmd)), byte(si.Command))
	b = append(b, cmd...)
	b = append(b, 0, 0) // descriptor_loop_length
	crc := CRC32MPEG(b[start:])
	return binary.BigEndian.AppendUint32(b, crc)
}

// RetimeSpliceInfo returns a copy of sec, a valid splice_info_section, whose
// pts_adjustment makes its splice time pts (modulo 2^33), with its CRC
// computed again; sec itself when it gives no splice time (immediate) or is
// not valid. An ingest whose timeline is not the section's (RTMP) puts the
// section on the timeline of its frames with it.
func RetimeSpliceInfo(sec []byte, pts int64) []byte {
	si, err := ParseSpliceInfo(sec)
	if err != nil || !si.Timed {
		return sec
	}
	ptsTime := (si.SpliceTime - si.PTSAdjustment) & (tsPeriod - 1)
	adj := (pts - ptsTime) & (tsPeriod - 1)
	out := append([]byte(nil), sec...)
	out[4] = out[4]&0xFE | byte(adj>>32)
	binary.BigEndian.PutUint32(out[5:9], uint32(adj))
	binary.BigEndian.PutUint32(out[len(out)-4:], CRC32MPEG(out[:len(out)-4]))
	return out
}
