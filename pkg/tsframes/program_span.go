package tsframes

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// A program span is the part of the stream under one PMT content (from a
// PMT to the next PMT whose content differs). programSpan demuxes it: it
// has mediacommon describe the tracks (see feeder), announces them, then
// assembles the PES of the H.264, H.265 and Opus streams itself and turns them into
// frames, until the input ends or the PMT content changes. In that case it
// drains: it goes on assembling the PES still in progress (so that they
// complete, at their PES_packet_length or next start) while it sets the
// packets of the new PMT's streams aside in input.stash, until every awaited
// PES has ended or DrainLimit packets were set aside.
type programSpan struct {
	in  *input
	ann *announcer

	// replay holds whole packets to process before reading the input: those
	// set aside by the previous program span, then those kept by the feeder.
	replay []byte
	pos    int
	// changed is set when the feeder consumed the signal of a PMT change:
	// the program span acts on it once replay is done.
	changed bool
	srcErr  error // sticky error of the input

	streams []*pesStream // H.264, H.265 and Opus streams (and source audio), by PID
	cues    []*cueStream // SCTE-35 PIDs, by PID
	cuePIDs pidSet
	// sourceAudio is Options.SourceAudio.
	sourceAudio bool
	media       pidSet

	draining bool
	wait     pidSet // PIDs whose PES in progress must end first
	waitN    int
	drained  int

	opus [][]byte // scratch for the Opus packets of a PES

	// held is where the packet returned last by next was set aside (the
	// stash or the feeder's kept packets), if it was.
	held *[]byte
}

// next returns the next packet to process: replayed ones first, then those
// of the input. A nil packet signals a PMT change (see input.next).
func (s *programSpan) next() ([]byte, error) {
	if s.pos < len(s.replay) {
		pkt := s.replay[s.pos : s.pos+packetSize : s.pos+packetSize]
		s.pos += packetSize
		return pkt, nil
	}
	if s.replay != nil {
		s.replay, s.pos = nil, 0
	}
	if s.changed {
		s.changed = false
		return nil, nil
	}
	if s.srcErr != nil {
		return nil, s.srcErr
	}
	pkt, err := s.in.next()
	if s.in.retracted {
		s.in.retracted = false
		s.retract(s.in.retractedPID)
	}
	s.held = nil
	if err != nil {
		s.srcErr = err
	}
	return pkt, err
}

// retract handles a packet of PID p, the last one the input returned,
// found suspect after the fact (not followed by a sync byte): the PES in
// progress of p is dropped, and the packet is removed from where it was set
// aside. A PES it completed has already been passed on.
func (s *programSpan) retract(p uint16) {
	if h := s.held; h != nil && len(*h) >= packetSize && pid((*h)[len(*h)-packetSize:]) == p {
		*h = (*h)[:len(*h)-packetSize]
	}
	if st := s.stream(p); st != nil && st.open {
		st.drop()
	}
}

// runSpan runs one program span over the current PAT and PMT and the
// packets that follow. It returns io.EOF at the end of the input or after a PMT change,
// errRestart or errWaitPMT when mediacommon could not describe the tracks,
// or errStop, errInput, errSink.
func (d *Demuxer) runSpan(in *input, ann *announcer) error {
	in.psi.changed = false
	in.resetContinuity()
	s := &programSpan{in: in, ann: ann, replay: in.stash, sourceAudio: d.opts.SourceAudio}
	in.stash = nil

	f := newFeeder(s, in.psi)
	// again is how to go on after mediacommon failed: over the same PMT if
	// it read packets beyond the PAT and PMT (a first frame it could not
	// use), else (the PMT itself is unusable) only once the PMT changes.
	again := func() error {
		if f.consumed > 0 {
			return errRestart
		}
		return errWaitPMT
	}

	r := &mpegts.Reader{R: f}
	err := r.Initialize()
	if len(f.keep) > 0 {
		// Demux what the probe read as if mediacommon had been rewound.
		s.replay = append(f.keep, s.replay[s.pos:]...)
		s.pos = 0
	}
	if err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return io.EOF
		case errors.Is(err, errStop), errors.Is(err, errInput):
			return err
		}
		d.bad(fmt.Errorf("%w: reading the PMT's tracks: %w", ErrDemux, err))
		return again()
	}

	tracks := make([]Track, 0, len(r.Tracks()))
	for _, t := range r.Tracks() {
		tracks = append(tracks, trackOf(t))
		switch t.Codec.(type) {
		case *codecs.H264:
			s.addStream(t.PID, CodecH264)
		case *codecs.H265:
			s.addStream(t.PID, CodecH265)
		case *codecs.Opus:
			s.addStream(t.PID, CodecOpus)
		case *codecs.MPEG4Audio, *codecs.MPEG4AudioLATM, *codecs.MPEG1Audio, *codecs.AC3, *codecs.EAC3:
			if s.sourceAudio {
				s.addStream(t.PID, trackOf(t).Codec)
			}
		}
	}
	if err := ann.setTracks(tracks); err != nil {
		return err
	}
	s.addCueStreams()
	return s.run()
}

func (s *programSpan) addStream(p uint16, c Codec) {
	if s.media.has(p) {
		return
	}
	s.media.add(p)
	s.streams = append(s.streams, &pesStream{pid: p, codec: c})
	slices.SortFunc(s.streams, func(a, b *pesStream) int { return int(a.pid) - int(b.pid) })
}

func (s *programSpan) stream(p uint16) *pesStream {
	if !s.media.has(p) {
		return nil
	}
	for _, st := range s.streams {
		if st.pid == p {
			return st
		}
	}
	return nil
}

// run demuxes until the input ends or a PMT change has been drained.
func (s *programSpan) run() error {
	for {
		pkt, err := s.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if err := s.end(false); err != nil {
					return err
				}
			}
			return err
		}
		switch {
		case pkt == nil:
			if !s.draining && s.startDrain() {
				return s.endDrain()
			}
		case s.draining:
			done, err := s.drain(pkt)
			if err != nil {
				return err
			}
			if done {
				return s.endDrain()
			}
		default:
			if err := s.route(pkt); err != nil {
				return err
			}
		}
	}
}

// route assembles a packet of an H.264, H.265 or Opus stream, or the
// sections of an SCTE-35 PID; the packets of the other streams are ignored. It returns only errSink.
func (s *programSpan) route(pkt []byte) error {
	st := s.stream(pid(pkt))
	if st == nil {
		if s.cuePIDs.has(pid(pkt)) {
			return s.routeCue(pkt)
		}
		return nil
	}
	payload, ok := packetPayload(pkt)
	if !ok {
		s.in.bad(fmt.Errorf("%w: PID %d: adaptation_field_length %d", ErrCorruptPacket, st.pid, pkt[4]))
		return nil
	}
	if pkt[3]&0x10 == 0 {
		return nil // adaptation field only
	}
	dup, gap := s.in.continuity(pkt)
	switch {
	case dup:
		return nil
	case gap:
		st.drop()
	}

	if pkt[1]&0x40 != 0 {
		if st.open {
			if err := s.complete(st); err != nil {
				return err
			}
		}
		st.begin(payload, s.in.maxPES)
	} else {
		if !st.open {
			return nil // after a loss, an oversized PES, or a mid-PES start
		}
		if len(st.buf)+len(payload) > s.in.maxPES {
			st.drop()
			s.in.bad(fmt.Errorf("%w: PID %d: over %d bytes, dropped", ErrPESTooLarge, st.pid, s.in.maxPES))
			return nil
		}
		st.add(payload, s.in.maxPES)
	}
	if st.full() {
		return s.complete(st)
	}
	return nil
}

// complete ends the PES in progress of st and turns it into frames.
func (s *programSpan) complete(st *pesStream) error {
	pes, err := st.take()
	if err != nil {
		s.in.bad(fmt.Errorf("%w: PID %d: %w", ErrDemux, st.pid, err))
		return nil
	}
	pts, dts, data, err := parsePES(pes)
	if err != nil {
		s.in.bad(fmt.Errorf("%w: PID %d: %w", ErrDemux, st.pid, err))
		return nil
	}
	switch st.codec {
	case CodecH264:
		var au h264.AnnexB
		if err := au.Unmarshal(data); err != nil {
			s.in.bad(fmt.Errorf("%w: PID %d: %w", ErrDemux, st.pid, err))
			return nil
		}
		if au[0][0] == byte(h264.NALUTypeAccessUnitDelimiter) {
			au = au[1:]
		}
		return s.ann.onH264(st.pid, pts, dts, au)
	case CodecH265:
		var au h264.AnnexB // the same byte stream format (H.265 Annex B)
		if err := au.Unmarshal(data); err != nil {
			s.in.bad(fmt.Errorf("%w: PID %d: %w", ErrDemux, st.pid, err))
			return nil
		}
		return s.ann.onH265(st.pid, pts, dts, au)
	case CodecOpus:
		if pts != dts {
			s.in.bad(fmt.Errorf("%w: PID %d: Opus PES with a DTS other than its PTS", ErrDemux, st.pid))
			return nil
		}
		packets := s.opus[:0]
		for len(data) > 0 || len(packets) == 0 {
			packet, n, err := nextOpusAccessUnit(data)
			if err != nil {
				s.in.bad(fmt.Errorf("%w: PID %d: Opus access unit %d: %w", ErrDemux, st.pid, len(packets)+1, err))
				return nil
			}
			packets = append(packets, packet)
			data = data[n:]
		}
		err := s.ann.onOpus(st.pid, pts, packets)
		clear(packets)
		s.opus = packets[:0]
		return err
	case CodecAAC, CodecAACLATM, CodecMPEGAudio, CodecAC3, CodecEAC3:
		if len(data) == 0 {
			return nil
		}
		return s.ann.onSourceAudio(st.pid, st.codec, pts, data)
	}
	return nil
}

// end finishes the program span at the end of the input (or of a drain):
// the PES still in progress are delivered, except one cut by a partial
// packet at the end of the input (already reported as such), and, reported,
// one short of its PES_packet_length and, after a drain, those still
// awaited.
func (s *programSpan) end(drained bool) error {
	for _, st := range s.streams {
		if !st.open {
			continue
		}
		switch {
		case drained && s.wait.has(st.pid):
			st.drop()
			s.in.bad(fmt.Errorf("%w: PID %d: the PES in progress at the PMT change did not end within %d packets, dropped",
				ErrDemux, st.pid, DrainLimit))
		case !drained && s.in.cut && st.pid == s.in.cutPID:
			s.in.cut = false
			st.drop()
		case st.want > 0 && !st.full():
			st.drop()
			s.in.bad(fmt.Errorf("%w: PID %d: PES of %d bytes cut after %d by the end of the input", ErrDemux, st.pid, st.want, len(st.buf)))
		default:
			if err := s.complete(st); err != nil {
				return err
			}
		}
	}
	return nil
}

// startDrain begins the drain after a PMT change; it reports whether there
// is nothing to wait for. It waits for the PES in progress of the streams
// the new PMT keeps, and for those of the streams it drops that have a
// PES_packet_length (the others have no end to wait for).
func (s *programSpan) startDrain() bool {
	s.draining = true
	for _, st := range s.streams {
		if st.open && (s.in.psi.esSet.has(st.pid) || st.want > 0) {
			s.wait.add(st.pid)
			s.waitN++
		}
	}
	return s.waitN == 0
}

// drain handles one packet that came after a PMT change and reports whether
// the program span can end now.
func (s *programSpan) drain(pkt []byte) (bool, error) {
	p := pid(pkt)
	start := pkt[1]&0x40 != 0
	next := s.in.psi.esSet.has(p) // a stream of the new PMT
	switch {
	case s.wait.has(p):
		st := s.stream(p)
		if !start {
			// Completes the PES in progress.
			if err := s.route(pkt); err != nil {
				return false, err
			}
			if !st.open {
				s.wait.remove(p)
				s.waitN--
			}
			return s.waitN == 0, nil
		}
		// The next PES starts: the one in progress is complete. (Its
		// continuity counter is not checked: a PMT change usually comes
		// with a new muxer, which starts its counters anew.)
		s.wait.remove(p)
		s.waitN--
		if st.open {
			if err := s.complete(st); err != nil {
				return false, err
			}
		}
	case s.media.has(p) && !next:
		// A stream the new PMT drops: let its last PES complete.
		if !start {
			if err := s.route(pkt); err != nil {
				return false, err
			}
		}
	}
	if next {
		s.in.stash = append(s.in.stash, pkt...)
		s.held = &s.in.stash
		s.drained++
	}
	return s.waitN == 0 || s.drained >= DrainLimit, nil
}

// endDrain ends the program span after a drain; the PMT change makes Run
// start the next one.
func (s *programSpan) endDrain() error {
	if err := s.end(true); err != nil {
		return err
	}
	return io.EOF
}
