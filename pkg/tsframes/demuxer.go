package tsframes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Sink receives the output of a Demuxer. Both methods are called from the
// goroutine that runs Run, never concurrently. An error stops Run, which
// returns it wrapped.
type Sink interface {
	// Tracks is called before any Frame of those tracks; again when the PMT
	// content changes or an H.264 profile-level-id changes. The
	// Announcement is owned by the receiver.
	Tracks(Announcement) error
	// Frame is called for every access unit of an H.264 track and every
	// packet of an Opus track (and, with Options.SourceAudio, every PES of
	// an AAC (ADTS or LATM), MPEG audio, AC-3 or E-AC-3 track). The Frame
	// (and its Data) is owned by the receiver.
	Frame(Frame) error
}

// Stats are the counters of a Demuxer.
type Stats struct {
	Packets      uint64 // 188-byte packets accepted in sync (all PIDs, dropped ones included)
	Bytes        uint64 // bytes read from the input (including garbage)
	Frames       uint64 // Frame calls (video access units and audio packets)
	Keyframes    uint64 // Frame calls with Key set
	AudioPackets uint64 // Frame calls of audio tracks
	DecodeErrors uint64 // non-fatal decode problems, except losses of sync
	Resyncs      uint64 // losses of sync (bytes skipped to find 0x47 again)
	PMTChanges   uint64 // PMTs whose content differed from the previous one
	Cues         uint64 // SCTE-35 cues passed to a CueSink
}

// Options tune a Demuxer. The zero value is valid.
type Options struct {
	// OnDecodeError, when set, is called (from Run's goroutine) for every
	// non-fatal decode problem, with an error wrapping one of the package's
	// Err values (ErrSync for a resync).
	OnDecodeError func(error)
	// SourceAudio also delivers the audio that WebRTC cannot carry (AAC in
	// ADTS or LATM/LOAS, MPEG-1/2 audio, AC-3, E-AC-3): one Frame per PES,
	// its Data the PES payload as it is (whole codec frames), Duration 0.
	// They are what a transcoding stage turns into Opus.
	SourceAudio bool
}

type counters struct {
	packets, bytes, frames, keyframes, audioPackets atomic.Uint64
	decodeErrors, resyncs, pmtChanges               atomic.Uint64
	cues                                            atomic.Uint64
}

// Demuxer reads an MPEG-TS stream and reports its tracks and frames.
type Demuxer struct {
	r       io.Reader
	opts    Options
	stats   counters
	running atomic.Bool
	maxPES  int // MaxPESSize; tests lower it
}

// NewDemuxer returns a Demuxer reading r. Nothing is read before Run.
func NewDemuxer(r io.Reader, opts Options) *Demuxer {
	return &Demuxer{r: r, opts: opts, maxPES: MaxPESSize}
}

// Stats returns the counters so far. It is safe to call concurrently with
// Run.
func (d *Demuxer) Stats() Stats {
	return Stats{
		Packets:      d.stats.packets.Load(),
		Bytes:        d.stats.bytes.Load(),
		Frames:       d.stats.frames.Load(),
		Keyframes:    d.stats.keyframes.Load(),
		AudioPackets: d.stats.audioPackets.Load(),
		DecodeErrors: d.stats.decodeErrors.Load(),
		Resyncs:      d.stats.resyncs.Load(),
		PMTChanges:   d.stats.pmtChanges.Load(),
		Cues:         d.stats.cues.Load(),
	}
}

// bad reports a non-fatal decode problem.
func (d *Demuxer) bad(err error) {
	d.stats.decodeErrors.Add(1)
	if d.opts.OnDecodeError != nil {
		d.opts.OnDecodeError(err)
	}
}

// Run reads the input and calls h until the input ends (it returns nil), a
// read fails (the read error, wrapped), h returns an error (that error,
// wrapped) or ctx is done (ctx.Err()). ctx is checked between reads: to stop
// a Read that blocks, the caller closes the reader. Run may be called once.
func (d *Demuxer) Run(ctx context.Context, h Sink) error {
	if !d.running.CompareAndSwap(false, true) {
		return errRunTwice
	}
	in := &input{
		pr:     newPacketReader(d.r),
		psi:    newPSITracker(),
		stats:  &d.stats,
		bad:    d.bad,
		maxPES: d.maxPES,
	}
	in.pr.stop = func() error {
		if ctx.Err() != nil {
			return errStop
		}
		return nil
	}
	in.pr.onBytes = func(n int) { d.stats.bytes.Add(uint64(n)) }
	in.pr.onResync = func(skipped int) {
		d.stats.resyncs.Add(1)
		if d.opts.OnDecodeError != nil {
			d.opts.OnDecodeError(fmt.Errorf("%w: skipped %d bytes", ErrSync, skipped))
		}
	}
	in.pr.onSuspect = func(pkt []byte) {
		d.bad(fmt.Errorf("%w: PID %d: packet not followed by a sync byte, dropped", ErrCorruptPacket, pid(pkt)))
	}
	in.pr.onRetract = func(pkt []byte) {
		d.bad(fmt.Errorf("%w: PID %d: packet not followed by a sync byte, its PES in progress dropped", ErrCorruptPacket, pid(pkt)))
		in.retract(pkt)
	}
	in.pr.onTruncated = func(partial []byte) {
		d.bad(fmt.Errorf("%w: input ends with a partial packet of %d bytes", ErrCorruptPacket, len(partial)))
		if len(partial) >= 4 && partial[1]&0x40 == 0 {
			// The PES in progress on that PID lost its end.
			in.cutPID, in.cut = pid(partial), true
		}
	}
	ann := newAnnouncer(h, &d.stats, d.bad)

	restart := false
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !in.psi.changed && !restart {
			if err := in.waitForPMT(); err != nil {
				return d.finish(ctx, err, in, ann)
			}
		}
		restart = false
		err := d.runSpan(in, ann)
		switch {
		case errors.Is(err, io.EOF):
			if in.psi.changed {
				continue // the PMT changed: next program span
			}
			return d.finish(ctx, err, in, ann)
		case errors.Is(err, errRestart):
			restart = true
		case errors.Is(err, errWaitPMT):
		default:
			return d.finish(ctx, err, in, ann)
		}
	}
}

// finish maps the error that ended a Run to Run's result.
func (d *Demuxer) finish(ctx context.Context, err error, in *input, ann *announcer) error {
	switch {
	case errors.Is(err, io.EOF):
		if err := ann.flush(); err != nil {
			return d.finish(ctx, err, in, ann)
		}
		return nil
	case errors.Is(err, errStop):
		return ctx.Err()
	case errors.Is(err, errInput):
		if ctx.Err() != nil {
			// The caller closed the reader to stop a pending Read.
			return ctx.Err()
		}
		return fmt.Errorf("tsframes: reading input: %w", in.readErr)
	case errors.Is(err, errSink):
		return fmt.Errorf("tsframes: sink: %w", ann.err)
	}
	return fmt.Errorf("tsframes: %w", err)
}
