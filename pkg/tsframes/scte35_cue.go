package tsframes

import (
	"errors"
	"fmt"
	"slices"
)

// Cue is an SCTE-35 splice cue of the program: the section as it came and
// when it applies on the frames' timeline.
type Cue struct {
	// PID is the SCTE-35 PID that carried it.
	PID uint16
	// PTS is when the splice applies, on the 90 kHz timeline of the
	// frames (unwrapped like theirs): the splice time, or for an immediate
	// splice (and a cancellation) the latest timestamp of the stream when
	// the section was read.
	PTS int64
	SpliceInfo
	// Section is the whole splice_info_section, CRC included. It is owned
	// by the receiver.
	Section []byte
}

// CueSink is implemented by a Sink that takes SCTE-35 cues: a Demuxer
// calls Cue, from Run's goroutine like the Sink's other methods, for every
// valid splice_insert and time_signal of a PID of stream type 0x86 of the
// program, once the stream's timeline has begun (a cue before the first
// timestamp is dropped). Other commands (splice_null heartbeats, ...) are
// ignored; invalid sections are dropped and counted as decode errors
// (ErrSCTE35). A Sink without this method gets no cues.
type CueSink interface {
	Cue(Cue) error
}

// cueStream assembles the sections of one SCTE-35 PID.
type cueStream struct {
	pid uint16
	sec section
}

// addCueStreams follows the SCTE-35 PIDs of the current PMT.
func (s *programSpan) addCueStreams() {
	for _, e := range s.in.psi.es {
		if e.streamType == StreamTypeSCTE35 && !s.cuePIDs.has(e.pid) {
			s.cuePIDs.add(e.pid)
			sec := newSection()
			sec.limit = MaxSCTE35Section
			s.cues = append(s.cues, &cueStream{pid: e.pid, sec: sec})
		}
	}
	slices.SortFunc(s.cues, func(a, b *cueStream) int { return int(a.pid) - int(b.pid) })
}

// routeCue assembles a packet of an SCTE-35 PID and passes on the cues it
// completes. It returns only errSink.
func (s *programSpan) routeCue(pkt []byte) error {
	p := pid(pkt)
	for _, c := range s.cues {
		if c.pid != p {
			continue
		}
		err := c.sec.push(pkt, func(sec, _ []byte) error { return s.ann.onCue(p, sec) })
		switch {
		case errors.Is(err, errSink):
			return err
		case err != nil:
			s.in.bad(fmt.Errorf("%w: PID %d: %w", ErrSCTE35, p, err))
		}
		return nil
	}
	return nil
}

// onCue parses one splice_info_section of PID p and hands the cue to the
// Sink when it takes cues. A bad section is reported (ErrSCTE35) and
// dropped.
func (a *announcer) onCue(p uint16, sec []byte) error {
	cs, ok := a.h.(CueSink)
	if !ok {
		return nil
	}
	si, err := ParseSpliceInfo(sec)
	if err != nil {
		a.bad(fmt.Errorf("PID %d: %w", p, err))
		return nil
	}
	if si.Command != SpliceInsert && si.Command != TimeSignal {
		return nil
	}
	var pts int64
	switch {
	case si.Timed:
		pts = a.clock.near(si.SpliceTime)
	case a.clock.init:
		pts = a.clock.ref
	default:
		return nil // no timeline yet to apply it to
	}
	a.stats.cues.Add(1)
	if err := cs.Cue(Cue{PID: p, PTS: pts, SpliceInfo: si, Section: slices.Clone(sec)}); err != nil {
		a.err = err
		return errSink
	}
	return nil
}

// near places the 33-bit timestamp raw on the unwrapped timeline, in the
// 2^33 period that puts it closest to the latest timestamp, without
// moving the timeline (a splice time is usually seconds ahead of the
// frames).
func (u *unwrapper) near(raw int64) int64 {
	if !u.init {
		return raw & (tsPeriod - 1)
	}
	v := *u
	return v.unwrap(raw)
}
