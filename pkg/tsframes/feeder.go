package tsframes

import (
	"errors"
	"fmt"
	"io"
)

// input is the packet layer of a Run, shared by the successive mediacommon
// readers: aligned packets (packetReader), PAT/PMT tracking (psiTracker),
// continuity counters, and the packets held for the next reader while the
// previous one drains.
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

	cc      [8192]int8 // last continuity counter per PID, -1 unknown
	stash   []byte     // packets for the next reader (whole packets)
	readErr error      // the input's error behind errInput
}

// next returns the next packet that is neither corrupt nor PAT/PMT (those
// go to the PSI tracker), or a nil packet right after a PMT with new content
// was accepted (psi.changed). Errors: io.EOF, errStop, errInput.
func (in *input) next() ([]byte, error) {
	for {
		pkt, err := in.pr.next()
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
		return pkt, nil
	}
}

// waitForPMT drops packets until the PSI tracker has a PMT with new content.
func (in *input) waitForPMT() error {
	in.stash = in.stash[:0]
	for !in.psi.changed {
		if _, err := in.next(); err != nil {
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

// pesState follows one elementary PID inside one reader.
type pesState struct {
	size     int  // payload bytes since the PES start
	open     bool // a PES start was forwarded
	dropping bool // PES over MaxPESSize: drop until the next start
	lastCC   int8 // continuity counter of the last packet forwarded
}

// feeder is the io.Reader under one mediacommon reader. It yields the PAT
// and PMT packets first, then the packets of the PMT's elementary streams,
// and ends with io.EOF at the end of the input or when the PMT changes. In
// that case it first drains: it goes on yielding the continuation packets of
// PES still in progress (so they complete) while it sets the packets of the
// new PMT aside in input.stash, until every such PES has ended or
// DrainLimit packets were set aside.
type feeder struct {
	in *input
	es pidSet // elementary PIDs forwarded to this reader

	preamble []byte // PAT and PMT packets
	replay   []byte // packets set aside by the previous reader
	stage    []byte
	out      []byte
	err      error // sticky: io.EOF, errStop or errInput

	pes map[uint16]*pesState

	draining bool
	wait     pidSet // PIDs whose PES in progress must end first
	waitN    int
	drained  int
}

// stagePackets is how many packets one Read prepares at most, like
// mediacommon's own read buffer.
const stagePackets = 7

func newFeeder(in *input, es pidSet, preamble, replay []byte) *feeder {
	return &feeder{
		in:       in,
		es:       es,
		preamble: preamble,
		replay:   replay,
		stage:    make([]byte, 0, (stagePackets+1)*packetSize),
		pes:      map[uint16]*pesState{},
	}
}

// Read implements io.Reader for mediacommon's reader.
func (f *feeder) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.produce()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

func (f *feeder) produce() {
	if len(f.preamble) > 0 {
		f.out, f.preamble = f.preamble, nil
		return
	}
	f.stage = f.stage[:0]
	for len(f.stage) < stagePackets*packetSize {
		if len(f.replay) > 0 {
			pkt := f.replay[:packetSize:packetSize]
			f.replay = f.replay[packetSize:]
			f.route(pkt)
			continue
		}
		if len(f.stage) > 0 && !f.in.pr.buffered() {
			break // do not block with packets ready
		}
		pkt, err := f.in.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				f.discardCut()
			}
			f.err = err
			break
		}
		if pkt == nil {
			// A new PMT: drain this reader, then end it.
			if !f.draining {
				f.startDrain()
				if f.waitN == 0 {
					f.err = io.EOF
					break
				}
			}
			continue
		}
		if f.draining {
			if f.drain(pkt) {
				f.err = io.EOF
				break
			}
			continue
		}
		f.route(pkt)
	}
	f.out = f.stage
}

func (f *feeder) startDrain() {
	f.draining = true
	for p, st := range f.pes {
		if st.open && !st.dropping && f.es.has(p) && f.in.psi.esSet.has(p) {
			f.wait.add(p)
			f.waitN++
		}
	}
}

// drain routes one packet that came after a PMT change and reports whether
// the reader can end now.
func (f *feeder) drain(pkt []byte) bool {
	p := pid(pkt)
	start := pkt[1]&0x40 != 0
	switch {
	case f.wait.has(p):
		if !start {
			f.route(pkt) // completes the PES in progress
			return false
		}
		f.wait.remove(p)
		f.waitN--
	case f.es.has(p) && !f.in.psi.esSet.has(p):
		// A stream the new PMT drops: let its last PES complete.
		if !start {
			f.route(pkt)
		}
	}
	if f.in.psi.esSet.has(p) {
		f.in.stash = append(f.in.stash, pkt...)
		f.drained++
	}
	return f.waitN == 0 || f.drained >= DrainLimit
}

// route forwards a packet of this reader's elementary streams, checking
// continuity and the PES size limit.
func (f *feeder) route(pkt []byte) {
	p := pid(pkt)
	if !f.es.has(p) {
		return
	}
	payload, ok := packetPayload(pkt)
	if !ok {
		f.in.bad(fmt.Errorf("%w: PID %d: adaptation_field_length %d", ErrCorruptPacket, p, pkt[4]))
		return
	}
	hasPayload := pkt[3]&0x10 != 0
	cc := int8(continuityCounter(pkt))
	if hasPayload {
		last := f.in.cc[p]
		if last >= 0 && cc != last && cc != (last+1)&0x0F && !discontinuityIndicator(pkt) {
			f.in.bad(fmt.Errorf("%w: PID %d: counter %d after %d", ErrContinuity, p, cc, last))
		}
		f.in.cc[p] = cc
	}

	st := f.pes[p]
	if st == nil {
		st = &pesState{lastCC: -1}
		f.pes[p] = st
	}
	switch {
	case pkt[1]&0x40 != 0:
		if st.dropping {
			// Make astits discard what it holds of the oversized PES.
			f.stage = append(f.stage, discardPacket(p, st.lastCC, cc)...)
			st.dropping = false
		}
		st.size = len(payload)
		st.open = true
	case st.dropping:
		return
	default:
		st.size += len(payload)
		if st.size > f.in.maxPES {
			st.dropping = true
			f.in.bad(fmt.Errorf("%w: PID %d: over %d bytes, dropped", ErrPESTooLarge, p, f.in.maxPES))
			return
		}
	}
	f.stage = append(f.stage, pkt...)
	if hasPayload {
		st.lastCC = cc
	}
}

// discardCut makes astits drop the PES that the end of the input cut.
func (f *feeder) discardCut() {
	if !f.in.cut || !f.es.has(f.in.cutPID) {
		return
	}
	f.in.cut = false
	if st := f.pes[f.in.cutPID]; st != nil && st.open && !st.dropping {
		f.stage = append(f.stage, discardPacket(f.in.cutPID, st.lastCC, -1)...)
	}
}

func discontinuityIndicator(pkt []byte) bool {
	return pkt[3]&0x20 != 0 && pkt[4] > 0 && pkt[5]&0x80 != 0
}

// discardPacket builds a payload-only packet of PID p whose continuity
// counter breaks continuity both with the last packet forwarded (lastCC) and
// with the next one (nextCC): astits drops what it buffered for the PID when
// it sees it, and again when the next packet comes, which then starts a
// clean PES.
func discardPacket(p uint16, lastCC, nextCC int8) []byte {
	var s int8
	for s = 0; s < 16; s++ {
		if s != lastCC && s != (lastCC+1)&0x0F && s != nextCC && (s+1)&0x0F != nextCC {
			break
		}
	}
	pkt := make([]byte, packetSize)
	pkt[0] = syncByte
	pkt[1] = byte(p >> 8 & 0x1F)
	pkt[2] = byte(p)
	pkt[3] = 0x10 | byte(s)
	for i := 4; i < packetSize; i++ {
		pkt[i] = 0xFF
	}
	return pkt
}
