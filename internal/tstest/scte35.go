package tstest

import (
	"encoding/binary"
	"testing"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// CuePID is the PID SCTE35 gives the cues it writes.
const CuePID = 0x1F0

// CueAt is an SCTE-35 section to write into a TS: right before the video
// PES whose PTS (33-bit, as in the file) is the first at or after Before.
type CueAt struct {
	Before  int64
	Section []byte
}

// SpliceInsert returns a splice_insert section for a splice at pts (as
// tsframes reads it: pts_time plus ptsAdjustment), out of network, with a
// break duration when duration is not 0.
func SpliceInsert(eventID uint32, pts, ptsAdjustment, duration int64) []byte {
	return tsframes.AppendSpliceInfo(nil, tsframes.SpliceInfo{
		Command: tsframes.SpliceInsert, Timed: true, SpliceTime: pts, PTSAdjustment: ptsAdjustment,
		EventID: eventID, OutOfNetwork: true, Duration: duration, AutoReturn: duration > 0,
	})
}

// TimeSignal returns a time_signal section for pts.
func TimeSignal(pts int64) []byte {
	return tsframes.AppendSpliceInfo(nil, tsframes.SpliceInfo{Command: tsframes.TimeSignal, Timed: true, SpliceTime: pts})
}

// VideoPTS returns the PTS (33-bit, as in the file) of the video PES of ts
// (the first stream of type 0x1B or 0x24 of its PMT), in file order.
func VideoPTS(t testing.TB, ts []byte) []int64 {
	t.Helper()
	video := programOf(t, ts).video
	var out []int64
	for i := 0; i+188 <= len(ts); i += 188 {
		pkt := ts[i : i+188]
		if pidOf(pkt) == video && pkt[1]&0x40 != 0 {
			if pts, ok := pesPTS(pkt); ok {
				out = append(out, pts)
			}
		}
	}
	return out
}

// SCTE35 returns ts with an SCTE-35 stream on CuePID: every PMT lists it
// (stream type 0x86), and each cue's section is written, in one packet,
// before the video PES it names (cues in the order of their Before). The
// test fails when ts is not a plain single-program TS whose PMT fits one
// packet, or a section does not fit one packet.
func SCTE35(t testing.TB, ts []byte, cues []CueAt) []byte {
	t.Helper()
	prog := programOf(t, ts)
	out := make([]byte, 0, len(ts)+(len(cues)+64)*188)
	next, cc := 0, byte(0)
	for i := 0; i+188 <= len(ts); i += 188 {
		pkt := ts[i : i+188]
		p := pidOf(pkt)
		if p == prog.video && pkt[1]&0x40 != 0 {
			if pts, ok := pesPTS(pkt); ok {
				for next < len(cues) && cues[next].Before <= pts {
					out = append(out, sectionPacket(t, CuePID, cc, cues[next].Section)...)
					cc = (cc + 1) & 0x0F
					next++
				}
			}
		}
		if p == prog.pmt && pkt[1]&0x40 != 0 {
			out = append(out, withCueStream(t, pkt)...)
			continue
		}
		out = append(out, pkt...)
	}
	if next < len(cues) {
		t.Fatalf("tstest: cue %d (before PTS %d) is after the last video PES", next, cues[next].Before)
	}
	return out
}

type program struct{ pmt, video uint16 }

func pidOf(pkt []byte) uint16 { return uint16(pkt[1]&0x1F)<<8 | uint16(pkt[2]) }

// payloadOf returns the payload of a TS packet.
func payloadOf(pkt []byte) []byte {
	pos := 4
	if pkt[3]&0x20 != 0 {
		pos += 1 + int(pkt[4])
	}
	if pkt[3]&0x10 == 0 || pos >= 188 {
		return nil
	}
	return pkt[pos:]
}

// programOf finds the PMT PID and the video PID of ts.
func programOf(t testing.TB, ts []byte) program {
	t.Helper()
	var prog program
	for i := 0; i+188 <= len(ts); i += 188 {
		pkt := ts[i : i+188]
		if pkt[0] != 0x47 || pkt[1]&0x40 == 0 {
			continue
		}
		pl := payloadOf(pkt)
		if len(pl) < 1 || 1+int(pl[0]) >= len(pl) {
			continue
		}
		sec := pl[1+int(pl[0]):]
		switch {
		case pidOf(pkt) == 0 && prog.pmt == 0 && len(sec) >= 16:
			prog.pmt = uint16(sec[10]&0x1F)<<8 | uint16(sec[11])
		case prog.pmt != 0 && pidOf(pkt) == prog.pmt && len(sec) >= 12:
			end := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2])) - 4
			for j := 12 + (int(sec[10]&0x0F)<<8 | int(sec[11])); j+5 <= end; j += 5 + (int(sec[j+3]&0x0F)<<8 | int(sec[j+4])) {
				if sec[j] == 0x1B || sec[j] == 0x24 {
					prog.video = uint16(sec[j+1]&0x1F)<<8 | uint16(sec[j+2])
					return prog
				}
			}
		}
	}
	t.Fatal("tstest: no PMT with a video stream found")
	return prog
}

// pesPTS reads the PTS of the PES that starts in pkt.
func pesPTS(pkt []byte) (int64, bool) {
	pl := payloadOf(pkt)
	if len(pl) < 14 || pl[0] != 0 || pl[1] != 0 || pl[2] != 1 || pl[7]&0x80 == 0 {
		return 0, false
	}
	b := pl[9:14]
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1), true
}

// withCueStream returns a PMT packet with the SCTE-35 stream added to its
// elementary stream loop (and its CRC computed again).
func withCueStream(t testing.TB, pkt []byte) []byte {
	t.Helper()
	pl := payloadOf(pkt)
	sec := pl[1+int(pl[0]):]
	n := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2]))
	if n > len(sec) || n+5 > len(sec) {
		t.Fatalf("tstest: PMT section of %d bytes does not fit its packet with one more stream", n)
	}
	ns := make([]byte, 0, n+5)
	ns = append(ns, sec[:n-4]...)
	p := uint16(CuePID)
	ns = append(ns, 0x86, 0xE0|byte(p>>8), byte(p), 0xF0, 0)
	l := n + 5 - 3
	ns[1], ns[2] = ns[1]&0xF0|byte(l>>8), byte(l)
	ns = binary.BigEndian.AppendUint32(ns, tsframes.CRC32MPEG(ns))
	hdr := len(pkt) - len(pl)
	out := append([]byte{}, pkt[:hdr]...)
	out = append(out, 0) // pointer_field
	out = append(out, ns...)
	for len(out) < 188 {
		out = append(out, 0xFF)
	}
	return out
}

// sectionPacket is one TS packet of PID p carrying sec whole.
func sectionPacket(t testing.TB, p uint16, cc byte, sec []byte) []byte {
	t.Helper()
	if len(sec) > 183 {
		t.Fatalf("tstest: section of %d bytes does not fit one packet", len(sec))
	}
	out := append(make([]byte, 0, 188), 0x47, 0x40|byte(p>>8), byte(p), 0x10|cc, 0)
	out = append(out, sec...)
	for len(out) < 188 {
		out = append(out, 0xFF)
	}
	return out
}

// VideoPID returns the PID of the video stream of ts (see VideoPTS).
func VideoPID(t testing.TB, ts []byte) uint16 {
	t.Helper()
	return programOf(t, ts).video
}

// PESStart returns the PID of a TS packet and, when a PES with a PTS starts
// in it, that PTS (33-bit, as in the file).
func PESStart(pkt []byte) (pid uint16, pts int64, ok bool) {
	if len(pkt) != 188 || pkt[1]&0x40 == 0 {
		return pidOf(pkt), 0, false
	}
	pts, ok = pesPTS(pkt)
	return pidOf(pkt), pts, ok
}
