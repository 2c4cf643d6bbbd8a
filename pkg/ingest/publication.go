package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// publication is one run of Publications.Ingest: one publisher of one
// stream.
type publication struct {
	pubs    *Publications
	stream  string
	epoch   uint64
	src     Source
	started time.Time
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when Ingest returns
	metrics streamMetrics
	proto   protocolMetrics
	log     *slog.Logger

	mu          sync.Mutex
	running     bool // Ingest has not returned: Interrupt may be called
	interrupted bool

	statsStop, statsDone chan struct{} // set when live

	publishing atomic.Bool
	bytes      atomic.Uint64
	frames     atomic.Uint64
	keyframes  atomic.Uint64
	decodeErrs atomic.Uint64
	pubErrs    atomic.Uint64
}

// stop cancels the publication with cause and interrupts its source.
func (s *publication) stop(cause error) {
	s.cancel(cause)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running && !s.interrupted && s.src.Interrupt != nil {
		s.interrupted = true
		s.src.Interrupt()
	}
}

// wasInterrupted reports whether stop interrupted the source (so that its
// read error is a consequence, not a cause).
func (s *publication) wasInterrupted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interrupted
}

func (s *publication) summary() Summary {
	return Summary{
		Stream:        s.stream,
		Epoch:         s.epoch,
		Kind:          s.src.Kind,
		Remote:        s.src.Remote,
		Started:       s.started,
		Duration:      time.Since(s.started),
		Bytes:         s.bytes.Load(),
		Frames:        s.frames.Load(),
		Keyframes:     s.keyframes.Load(),
		DecodeErrors:  s.decodeErrs.Load(),
		PublishErrors: s.pubErrs.Load(),
	}
}

func (s *publication) ingestStats() bus.IngestStats {
	return bus.IngestStats{
		Bytes:        s.bytes.Load(),
		Frames:       s.frames.Load(),
		Keyframes:    s.keyframes.Load(),
		DecodeErrors: s.decodeErrs.Load(),
		PublishErrs:  s.pubErrs.Load(),
		Protocol:     s.src.Kind,
		Publisher:    s.src.Remote,
	}
}

// run demuxes the source; the forwarder makes the publication live at its
// first access unit and publishes from then on.
func (s *publication) run(ctx context.Context) (Summary, error) {
	body := &countingReader{r: s.src.Body, s: s}
	var syncErr, runErr error
	h := &frameForwarder{s: s, ctx: ctx}
	if s.src.Frames != nil {
		runErr = s.src.Frames(ctx, body, h)
	} else {
		var in io.Reader
		if in, syncErr = checkSync(body); syncErr == nil {
			// SourceAudio: AAC, MPEG audio and AC-3 reach the Publisher,
			// which publishes them when a transcoding stage announced a
			// track derived from them (pkg/transcode) and ignores them
			// otherwise.
			dm := tsframes.NewDemuxer(in, tsframes.Options{OnDecodeError: s.onDecodeError, SourceAudio: true})
			h.il = &interleaver{}
			runErr = dm.Run(ctx, h)
		}
	}

	var closeErr error
	if h.pub != nil {
		h.flush()
		closeErr = s.closePublisher(ctx, h.pub)
	}
	var result error
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrTakenOver) || errors.Is(cause, ErrClosed):
		result = cause
	case body.err != nil && !body.errInterrupted:
		// Before ctx: net/http cancels the request's context when a body
		// read fails.
		result = fmt.Errorf("%w: %w", ErrSource, body.err)
	case cause != nil:
		result = cause
	case h.fatal != nil:
		result = h.fatal
	case body.err != nil:
		result = fmt.Errorf("%w: %w", ErrSource, body.err)
	case syncErr != nil:
		result = syncErr
	case runErr != nil:
		result = fmt.Errorf("%w: %w", ErrStream, runErr)
	case closeErr != nil:
		result = fmt.Errorf("%w: closing: %w", ErrPublisher, closeErr)
	}
	return s.end(result, closeErr)
}

// goLive takes the stream (see Publications.goLive), opens the Publisher
// and starts handing it statistics.
func (s *publication) goLive(ctx context.Context) (Publisher, error) {
	if ctx.Err() != nil { // stopped: never take the stream from its publisher
		return nil, context.Cause(ctx)
	}
	if err := s.pubs.goLive(s); err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // stopped while waiting for the previous publication
		return nil, context.Cause(ctx)
	}
	pub, err := s.pubs.cfg.NewPublisher(ctx, s.stream, s.epoch, s.onAck)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: opening: %w", ErrPublisher, err)
	}
	s.publishing.Store(true)
	s.metrics.publications.Inc()
	s.proto.publications.Inc()
	s.log.Info("ingest started")

	// Statistics go to the Publisher periodically; the goroutine ends
	// before the Publisher is closed.
	s.statsDone = make(chan struct{})
	s.statsStop = make(chan struct{})
	go func() {
		defer close(s.statsDone)
		t := time.NewTicker(s.pubs.cfg.StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pub.SetIngestStats(s.ingestStats())
			case <-s.statsStop:
				return
			}
		}
	}()
	return pub, nil
}

// closePublisher stops the statistics, hands the Publisher the last ones
// and closes it, within CloseTimeout.
func (s *publication) closePublisher(ctx context.Context, pub Publisher) error {
	defer s.metrics.publications.Dec()
	close(s.statsStop)
	<-s.statsDone
	pub.SetIngestStats(s.ingestStats())
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pubs.cfg.CloseTimeout)
	defer cancel()
	return pub.Shutdown(closeCtx)
}

// end logs the end of the publication and returns its summary and err.
func (s *publication) end(err, closeErr error) (Summary, error) {
	sum := s.summary()
	attrs := []any{
		"bytes", sum.Bytes, "frames", sum.Frames, "keyframes", sum.Keyframes,
		"decode_errors", sum.DecodeErrors, "publish_errors", sum.PublishErrors,
		"duration", sum.Duration.Round(time.Millisecond),
	}
	if closeErr != nil {
		s.log.Warn("closing publisher failed", "err", closeErr)
	}
	switch {
	case err == nil && !s.publishing.Load():
		s.log.Info("ingest ended before its first access unit: nothing published", attrs...)
	case err == nil:
		s.log.Info("ingest ended", attrs...)
	case errors.Is(err, ErrTakenOver), errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		s.log.Info("ingest stopped", append(attrs, "reason", err)...)
	case errors.Is(err, ErrLive), errors.Is(err, ErrNotTS):
		s.log.Info("ingest refused", append(attrs, "reason", err)...)
	default:
		s.log.Warn("ingest failed", append(attrs, "err", err)...)
	}
	return sum, err
}

func (s *publication) onAck(latency time.Duration, err error) {
	if err != nil {
		s.publishError(err)
		return
	}
	s.metrics.latency.Observe(latency.Seconds())
}

func (s *publication) onDecodeError(err error) {
	n := s.decodeErrs.Add(1)
	s.metrics.decodeErrors.Inc()
	if n == 1 {
		s.log.Warn("MPEG-TS decode error (later ones are logged at debug level)", "err", err)
	} else {
		s.log.Debug("MPEG-TS decode error", "err", err)
	}
}

func (s *publication) publishError(err error) {
	n := s.pubErrs.Add(1)
	s.metrics.publishErrors.Inc()
	if n == 1 {
		s.log.Warn("publish failed (later failures are logged at debug level)", "err", err)
	} else {
		s.log.Debug("publish failed", "err", err)
	}
}

// frameForwarder publishes what the demuxer produces, from the first
// access unit on: until then it keeps the announcement, and the publication
// is not live.
type frameForwarder struct {
	s       *publication
	pub     Publisher // nil until the publication is live
	ctx     context.Context
	fatal   error                  // ends the publication: ErrLive, ErrPublisher, ...
	pending *tsframes.Announcement // announcement to publish (again)
	// il, for an MPEG-TS source, holds video back until its audio has
	// arrived; nil for sources that deliver frames interleaved. Its frames
	// are published by the demux loop and, when the source pauses, by
	// ilTimer: mu serializes them (see interleave.go).
	il      *interleaver
	out     []tsframes.Frame // scratch: the frames il releases
	mu      sync.Mutex
	ilTimer *time.Timer
	ilDone  bool // no more timer publishing: the publication is closing
}

func (h *frameForwarder) Tracks(a tsframes.Announcement) error {
	h.s.log.Info("tracks", "tracks", a.Tracks)
	if h.il != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		// The frames held belong to the previous announcement.
		if err := h.publishAll(h.il.announce(a, time.Now(), h.out[:0])); err != nil {
			return err
		}
	}
	if h.pub == nil {
		h.pending = &a
		return nil
	}
	return h.announce(a)
}

// goLive makes the publication live and publishes the announcement kept.
func (h *frameForwarder) goLive() error {
	pub, err := h.s.goLive(h.ctx)
	if err != nil {
		h.fatal = err
		return err
	}
	h.pub = pub
	if h.pending != nil {
		return h.announce(*h.pending)
	}
	return nil
}

// announce publishes a; when that fails, it is retried before the next
// keyframe, since the Publisher ignores frames until it has announced.
func (h *frameForwarder) announce(a tsframes.Announcement) error {
	err := h.pub.Announce(h.ctx, a)
	if err != nil && h.ctx.Err() == nil && !errors.Is(err, bus.ErrClosed) {
		h.pending = &a
	} else {
		h.pending = nil
	}
	return h.check(err)
}

func (h *frameForwarder) Frame(f tsframes.Frame) error {
	if h.il != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	if h.pub == nil {
		if err := h.goLive(); err != nil {
			return err
		}
	}
	h.s.frames.Add(1)
	h.s.metrics.frames.Inc()
	if f.Key {
		h.s.keyframes.Add(1)
		h.s.metrics.keyframes.Inc()
	}
	if h.il == nil {
		return h.publish(f)
	}
	err := h.publishAll(h.il.frame(f, time.Now(), h.out[:0]))
	h.armLocked()
	return err
}

// publishAll publishes frames in order; it stops at an error that ends the
// publication.
func (h *frameForwarder) publishAll(frames []tsframes.Frame) error {
	h.out = frames
	for i, f := range frames {
		if err := h.publish(f); err != nil {
			clear(frames[i:])
			return err
		}
	}
	clear(frames)
	return nil
}

// publish publishes f, after the announcement when it is still to be
// published and f is a keyframe.
func (h *frameForwarder) publish(f tsframes.Frame) error {
	if f.Key && h.pending != nil {
		if err := h.announce(*h.pending); err != nil {
			return err
		}
	}
	return h.check(h.pub.Publish(h.ctx, f))
}

// check decides whether a publish error ends the publication: a closed
// Publisher or a done context does; other errors are counted and the
// publication goes on (the next frames may get through).
func (h *frameForwarder) check(err error) error {
	switch {
	case err == nil:
		return nil
	case h.ctx.Err() != nil:
		return err
	case errors.Is(err, bus.ErrClosed):
		h.fatal = fmt.Errorf("%w: %w", ErrPublisher, err)
		return err
	default:
		h.s.publishError(err)
		return nil
	}
}

// countingReader counts the bytes of the source and keeps its read error.
type countingReader struct {
	r   io.Reader
	s   *publication
	err error
	// errInterrupted is true when err came after stop interrupted the
	// source: a consequence of the stop, not a failure of the source.
	errInterrupted bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.s.bytes.Add(uint64(n))
		c.s.metrics.bytes.Add(float64(n))
		c.s.proto.bytes.Add(float64(n))
	}
	if err != nil && err != io.EOF {
		c.err = err
		c.errInterrupted = c.s.wasInterrupted()
	}
	return n, err
}
