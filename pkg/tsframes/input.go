package tsframes

import (
	"errors"
	"fmt"
	"io"
)

// input is the packet layer of a Run, shared by its successive program
// spans: aligned packets (packetReader), PAT/PMT tracking (psiTracker),
// continuity counters, and the packets set aside for the next program span
// while the previous one drains.
type input struct {
	pr     *packetReader
	psi    *psiTracker
	stats  *counters
	bad    func(error)
	maxPES int // MaxPESSize; smaller in tests

	// cut is set when the input ended inside a packet that continued the
	// PES of cutPID: that PES is incomplete and must not be emitted.
	cut    bool
	cutPID uint16

	// out is set while the packet read last was returned by next (not
	// consumed here). retracted is set when the packet reader retracted such
	// a packet (see packetReader): the program span drops the PES in
	// progress of retractedPID.
	out          bool
	retracted    bool
	retractedPID uint16

	cc      [8192]int8 // last continuity counter per PID, -1 unknown
	stash   []byte     // packets for the next program span (whole packets)
	readErr error      // the input's error behind errInput
}

// next returns the next packet that is neither corrupt nor PAT/PMT (those
// go to the PSI tracker), or a nil packet after a PAT/PMT packet while a
// PMT with new content is pending (psi.changed). The packet is valid until
// the next call. Errors: io.EOF, errStop, errInput.
func (in *input) next() ([]byte, error) {
	for {
		pkt, err := in.pr.next()
		in.out = false
		if err != nil {
			switch {
			case isEOF(err):
				return nil, io.EOF
			case errors.Is(err, errStop):
				return nil, errStop
			}
			in.readErr = err
			return nil, errInput
		}
		in.stats.packets.Add(1)
		if pkt[1]&0x80 != 0 {
			in.bad(fmt.Errorf("%w: PID %d: transport_error_indicator set", ErrCorruptPacket, pid(pkt)))
			continue
		}
		p := pid(pkt)
		if in.psi.wants(p) {
			if err := in.psi.push(pkt); err != nil {
				in.bad(err)
			}
			in.stats.pmtChanges.Store(in.psi.changes)
			if in.psi.changed {
				return nil, nil
			}
			continue
		}
		in.out = true
		return pkt, nil
	}
}

// retract handles the packet reader's retraction of the packet it returned
// last: only one that next passed on matters (PAT/PMT sections carry a
// CRC).
func (in *input) retract(pkt []byte) {
	if in.out {
		in.out = false
		in.retracted, in.retractedPID = true, pid(pkt)
	}
}

// waitForPMT drops packets until the PSI tracker has a PMT with new content.
func (in *input) waitForPMT() error {
	in.stash = nil
	for !in.psi.changed {
		_, err := in.next()
		in.retracted = false // the packets are dropped anyway
		if err != nil {
			return err
		}
	}
	return nil
}

func (in *input) resetContinuity() {
	for i := range in.cc {
		in.cc[i] = -1
	}
}

// continuity checks the continuity counter of a packet with payload of an
// elementary stream and records it. dup reports a repeated packet (same
// counter as the previous one), which is to be ignored; gap reports lost
// packets (counted and reported here).
func (in *input) continuity(pkt []byte) (dup, gap bool) {
	p := pid(pkt)
	cc := int8(continuityCounter(pkt))
	last := in.cc[p]
	in.cc[p] = cc
	if last < 0 || discontinuityIndicator(pkt) {
		return false, false
	}
	switch cc {
	case last:
		return true, false
	case (last + 1) & 0x0F:
		return false, false
	}
	in.bad(fmt.Errorf("%w: PID %d: counter %d after %d", ErrContinuity, p, cc, last))
	return false, true
}

func discontinuityIndicator(pkt []byte) bool {
	return pkt[3]&0x20 != 0 && pkt[4] > 0 && pkt[5]&0x80 != 0
}
