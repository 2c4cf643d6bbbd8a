package tsframes

import (
	"errors"
	"fmt"
	"io"
)

// Track detection. mediacommon's reader describes the tracks of a PMT
// (Reader.Initialize, Reader.Tracks). For AAC, AC-3 and E-AC-3 it needs the
// first PES of the track as well (for the sample rate and channels); for
// every other codec the PAT and PMT are enough. The feeder is the io.Reader
// under Initialize: it yields the PAT and PMT packets and, only when the PMT
// has such a stream, the packets of those streams (the probe). The other
// elementary packets read meanwhile are kept, at most probeLimit packets, to
// be demuxed once the tracks are known, as if the reader had been rewound.

const (
	// probeLimit is how many packets of the other streams are kept while
	// the probe waits for a first AAC/AC-3/E-AC-3 PES; beyond it they are
	// dropped (and reported), so that a track that never shows a frame
	// cannot make memory grow.
	probeLimit = 4 * DrainLimit
	// probeMaxPES bounds the PES passed to mediacommon while probing (PES
	// of those codecs carry a PES_packet_length, so at most 64 KiB): what
	// follows in an oversized one is not passed on.
	probeMaxPES = 64 << 10
)

// errProbeOverrun: mediacommon asked for more than the PAT and PMT while no
// stream of the PMT needed a probe.
var errProbeOverrun = errors.New("tsframes: track detection read past the PMT")

// probes reports whether mediacommon reads the first PES of a stream of this
// stream_type to describe it.
func probes(streamType byte) bool {
	switch streamType {
	case 0x0F, 0x81, 0x87: // AAC (ADTS), AC-3, E-AC-3
		return true
	}
	return false
}

// feeder is the io.Reader under mediacommon's Reader.Initialize for one
// program span.
type feeder struct {
	s        *programSpan
	preamble []byte // PAT and PMT packets
	probe    pidSet // streams mediacommon reads PES of
	probing  bool   // probe is not empty
	es       pidSet // the PMT's elementary streams

	out  []byte // what the next Read returns
	keep []byte // packets of the other streams, for after the probe
	// pesSize is the payload size so far of the PES passed on per probe
	// stream; -1 while the packets of an oversized one are held back.
	pesSize  map[uint16]int
	consumed int   // packets read after the PAT and PMT
	err      error // sticky: what Read returns once out is empty
}

func newFeeder(s *programSpan, psi *psiTracker) *feeder {
	f := &feeder{s: s, preamble: psi.preamble(), es: psi.esSet}
	for _, e := range psi.es {
		if probes(e.streamType) {
			f.probe.add(e.pid)
			f.probing = true
		}
	}
	return f
}

// Read implements io.Reader for mediacommon's reader: whole packets, the
// PAT and PMT first.
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
	if !f.probing {
		f.err = errProbeOverrun
		return
	}
	for len(f.out) == 0 {
		pkt, err := f.s.next()
		switch {
		case err != nil:
			// io.EOF, errStop or errInput; the program span sees it again
			// when it reads on.
			f.err = err
			return
		case pkt == nil:
			// A new PMT: this one's tracks are described with what came so
			// far; the program span handles the change after the kept
			// packets.
			f.s.changed = true
			f.err = io.EOF
			return
		}
		f.consumed++
		p := pid(pkt)
		switch {
		case f.probe.has(p):
			if f.pass(pkt) {
				f.out = pkt
			}
			if f.s.sourceAudio {
				// Delivered as frames too (Options.SourceAudio): the
				// probe's PES is demuxed again once the tracks are known.
				f.keep = append(f.keep, pkt...)
				f.s.held = &f.keep
			}
		case f.es.has(p):
			if len(f.keep) >= probeLimit*packetSize {
				f.s.in.bad(fmt.Errorf("%w: no first frame of the PMT's AAC/AC-3/E-AC-3 streams within %d packets: %d packets of the other streams dropped",
					ErrDemux, probeLimit, probeLimit))
				f.keep = f.keep[:0]
			}
			f.keep = append(f.keep, pkt...)
			f.s.held = &f.keep
		}
	}
}

// pass applies probeMaxPES to a packet of a probe stream.
func (f *feeder) pass(pkt []byte) bool {
	payload, ok := packetPayload(pkt)
	if !ok {
		return false
	}
	if f.pesSize == nil {
		f.pesSize = map[uint16]int{}
	}
	p := pid(pkt)
	size := f.pesSize[p]
	switch {
	case pkt[1]&0x40 != 0:
		size = len(payload)
	case size < 0:
		return false
	default:
		size += len(payload)
		if size > probeMaxPES {
			size = -1
		}
	}
	f.pesSize[p] = size
	return size >= 0
}
