package tsframes

import (
	"bytes"
	"cmp"
	"fmt"
)

// PSI: just enough PAT/PMT parsing to know which PMT PID to follow, which
// elementary PIDs there are (and their stream types), and when the PMT
// content changes. The tracks themselves are described by mediacommon's
// reader, which a new program span starts over the current PAT and PMT
// packets whenever that content changes.

const (
	pidPAT         = 0x0000
	pidNull        = 0x1FFF
	tableIDPAT     = 0x00
	tableIDPMT     = 0x02
	maxSectionSize = 1024 // 3 + section_length (at most 1021 for PAT/PMT)
)

// section assembles one PSI section of a PID, possibly spread over several
// packets, and keeps copies of those packets.
type section struct {
	buf     []byte
	want    int // total size of the section being assembled; 0 when idle
	lastCC  int // -1 before the first packet
	packets []byte
	// limit is the largest section accepted; 0 means maxSectionSize.
	limit int
}

func newSection() section {
	return section{lastCC: -1}
}

func (s *section) reset() {
	s.buf = s.buf[:0]
	s.want = 0
	s.packets = s.packets[:0]
}

// push adds a packet; for each section it completes, done is called with the
// section bytes and the raw packets that carried it (both reused afterwards).
func (s *section) push(pkt []byte, done func(sec, packets []byte) error) error {
	payload, ok := packetPayload(pkt)
	cc := int(pkt[3] & 0x0F)
	if !ok || len(payload) == 0 {
		return nil
	}
	start := pkt[1]&0x40 != 0
	dup := cc == s.lastCC
	gap := s.lastCC >= 0 && cc != (s.lastCC+1)&0x0F && !dup
	s.lastCC = cc
	if dup && !start {
		// A repeated packet; a repeated section start is harmless (an
		// identical section is recognised as such).
		return nil
	}
	var errOut error
	if !start {
		// Continuation of the section being assembled.
		if s.want == 0 {
			return nil
		}
		if gap {
			s.reset()
			return fmt.Errorf("%w: PID %d: section lost a packet", ErrPSI, pid(pkt))
		}
		s.packets = append(s.packets, pkt...)
		return s.add(payload, done)
	}

	pointer := int(payload[0])
	payload = payload[1:]
	if pointer > len(payload) {
		s.reset()
		return fmt.Errorf("%w: PID %d: pointer_field %d beyond the packet", ErrPSI, pid(pkt), pointer)
	}
	if s.want != 0 && !gap {
		// The bytes before the pointer end the previous section.
		s.packets = append(s.packets, pkt...)
		errOut = s.add(payload[:pointer], done)
	}
	s.reset()
	s.packets = append(s.packets, pkt...)
	rest := payload[pointer:]
	if len(rest) == 0 || rest[0] == 0xFF {
		return errOut
	}
	if len(rest) < 3 {
		// The section header itself spans packets; rare enough to ignore.
		return errOut
	}
	s.want = 3 + (int(rest[1]&0x0F)<<8 | int(rest[2]))
	if limit := cmp.Or(s.limit, maxSectionSize); s.want > limit || s.want < 3+9 {
		s.reset()
		return fmt.Errorf("%w: PID %d: section length %d", ErrPSI, pid(pkt), s.want-3)
	}
	if err := s.add(rest, done); err != nil {
		return err
	}
	return errOut
}

func (s *section) add(b []byte, done func(sec, packets []byte) error) error {
	need := s.want - len(s.buf)
	if len(b) > need {
		b = b[:need]
	}
	s.buf = append(s.buf, b...)
	if len(s.buf) < s.want {
		return nil
	}
	err := done(s.buf, s.packets)
	s.reset()
	return err
}

// checkSection validates the common long-form header and the CRC.
func checkSection(sec []byte, tableID byte) error {
	if sec[0] != tableID {
		return fmt.Errorf("%w: table_id 0x%02x, want 0x%02x", ErrPSI, sec[0], tableID)
	}
	if sec[1]&0x80 == 0 {
		return fmt.Errorf("%w: table 0x%02x without section_syntax_indicator", ErrPSI, tableID)
	}
	if CRC32MPEG(sec) != 0 {
		return fmt.Errorf("%w: table 0x%02x: CRC mismatch", ErrPSI, tableID)
	}
	return nil
}

// CRC32MPEG is the CRC-32/MPEG-2 of b, the CRC of PSI and SCTE-35 sections;
// over a section including its CRC it is 0. Sections are small and rarely
// new, so a bitwise loop is enough.
func CRC32MPEG(b []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, v := range b {
		crc ^= uint32(v) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// esInfo is one elementary stream of the PMT.
type esInfo struct {
	pid        uint16
	streamType byte
}

// psiTracker follows the PAT and the PMT of the first program.
type psiTracker struct {
	pat, pmt section

	patSection []byte // last accepted PAT section
	patPackets []byte // the packets that carried it

	program   uint16
	pmtPID    uint16
	hasPMTPID bool

	pmtSection []byte // last accepted PMT section
	pmtPackets []byte

	// The current PMT content: its elementary stream loop.
	esLoop []byte
	es     []esInfo
	esSet  pidSet
	hasPMT bool

	// changed is set when a PMT with new content was accepted; the caller
	// clears it. changes counts the PMTs accepted after the first one.
	changed bool
	changes uint64
}

func newPSITracker() *psiTracker {
	return &psiTracker{pat: newSection(), pmt: newSection()}
}

// wants reports whether a packet of this PID is PSI the tracker follows.
func (t *psiTracker) wants(p uint16) bool {
	return p == pidPAT || (t.hasPMTPID && p == t.pmtPID)
}

// push feeds a PAT or PMT packet.
func (t *psiTracker) push(pkt []byte) error {
	if pid(pkt) == pidPAT {
		return t.pat.push(pkt, t.onPAT)
	}
	return t.pmt.push(pkt, t.onPMT)
}

func (t *psiTracker) onPAT(sec, packets []byte) error {
	if bytes.Equal(sec, t.patSection) {
		t.patPackets = append(t.patPackets[:0], packets...)
		return nil
	}
	if err := checkSection(sec, tableIDPAT); err != nil {
		return err
	}
	if sec[5]&0x01 == 0 {
		return nil // not yet applicable
	}
	var program, pmtPID uint16
	found := false
	for i := 8; i+4 <= len(sec)-4; i += 4 {
		num := uint16(sec[i])<<8 | uint16(sec[i+1])
		if num == 0 {
			continue // network PID
		}
		program, pmtPID, found = num, uint16(sec[i+2]&0x1F)<<8|uint16(sec[i+3]), true
		break
	}
	if !found {
		return fmt.Errorf("%w: PAT lists no program", ErrPSI)
	}
	t.patSection = append(t.patSection[:0], sec...)
	t.patPackets = append(t.patPackets[:0], packets...)
	if !t.hasPMTPID || pmtPID != t.pmtPID || program != t.program {
		t.program, t.pmtPID, t.hasPMTPID = program, pmtPID, true
		t.pmt = newSection()
		t.pmtSection = t.pmtSection[:0]
	}
	return nil
}

func (t *psiTracker) onPMT(sec, packets []byte) error {
	if bytes.Equal(sec, t.pmtSection) {
		t.pmtPackets = append(t.pmtPackets[:0], packets...)
		return nil
	}
	if err := checkSection(sec, tableIDPMT); err != nil {
		return err
	}
	if sec[5]&0x01 == 0 {
		return nil
	}
	if num := uint16(sec[3])<<8 | uint16(sec[4]); num != t.program {
		return nil // another program's PMT on the same PID
	}
	if sec[6] != 0 || sec[7] != 0 {
		return fmt.Errorf("%w: PMT section_number %d/%d", ErrPSI, sec[6], sec[7])
	}
	end := len(sec) - 4
	pil := int(sec[10]&0x0F)<<8 | int(sec[11])
	pos := 12 + pil
	if pos > end {
		return fmt.Errorf("%w: PMT program_info_length %d", ErrPSI, pil)
	}
	loop := sec[pos:end]
	var es []esInfo
	for i := 0; i < len(loop); {
		if i+5 > len(loop) {
			return fmt.Errorf("%w: PMT stream entry truncated", ErrPSI)
		}
		eil := int(loop[i+3]&0x0F)<<8 | int(loop[i+4])
		if i+5+eil > len(loop) {
			return fmt.Errorf("%w: PMT ES_info_length %d", ErrPSI, eil)
		}
		p := uint16(loop[i+1]&0x1F)<<8 | uint16(loop[i+2])
		if p == pidPAT || p == pidNull || p == t.pmtPID {
			return fmt.Errorf("%w: PMT lists PID %d as a stream", ErrPSI, p)
		}
		es = append(es, esInfo{pid: p, streamType: loop[i]})
		i += 5 + eil
	}
	t.pmtSection = append(t.pmtSection[:0], sec...)
	t.pmtPackets = append(t.pmtPackets[:0], packets...)
	if t.hasPMT && bytes.Equal(loop, t.esLoop) {
		return nil
	}
	t.esLoop = append(t.esLoop[:0], loop...)
	t.es = es
	t.esSet = pidSet{}
	for _, e := range es {
		t.esSet.add(e.pid)
	}
	if t.hasPMT {
		t.changes++
	}
	t.hasPMT = true
	t.changed = true
	return nil
}

// preamble returns a copy of the packets of the current PAT and PMT, to
// start mediacommon's reader with.
func (t *psiTracker) preamble() []byte {
	out := make([]byte, 0, len(t.patPackets)+len(t.pmtPackets))
	out = append(out, t.patPackets...)
	return append(out, t.pmtPackets...)
}

// pidSet is a set of 13-bit PIDs.
type pidSet [8192 / 64]uint64

func (s *pidSet) add(p uint16)           { s[p>>6] |= 1 << (p & 63) }
func (s *pidSet) has(p uint16) bool      { return s[p>>6]&(1<<(p&63)) != 0 }
func (s *pidSet) remove(p uint16)        { s[p>>6] &^= 1 << (p & 63) }
func pid(pkt []byte) uint16              { return uint16(pkt[1]&0x1F)<<8 | uint16(pkt[2]) }
func continuityCounter(pkt []byte) uint8 { return pkt[3] & 0x0F }

// packetPayload returns the payload of a packet, ok false when the
// adaptation field is malformed. A packet without payload has an empty one.
func packetPayload(pkt []byte) ([]byte, bool) {
	afc := pkt[3] >> 4 & 0x03
	pos := 4
	if afc&0x02 != 0 {
		l := int(pkt[4])
		if l > 183 {
			return nil, false
		}
		pos += 1 + l
	}
	if afc&0x01 == 0 {
		return nil, true
	}
	return pkt[pos:], true
}
