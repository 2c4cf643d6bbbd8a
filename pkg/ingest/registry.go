package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Config configures a Registry.
type Config struct {
	// NewPublisher opens the Publisher of each session (required).
	NewPublisher NewPublisherFunc
	// Metrics receives the ingest metrics; nil creates unregistered ones.
	Metrics *Metrics
	// Logger receives session logs, with stream and epoch fields; nil
	// discards them.
	Logger *slog.Logger
	// StatsInterval is how often a session hands its statistics to its
	// Publisher (default 2 s).
	StatsInterval time.Duration
	// CloseTimeout bounds the flush of a session's Publisher when it ends
	// (default 5 s).
	CloseTimeout time.Duration
}

// Source is the input of a session.
type Source struct {
	// Kind ("http", "udp", ...) and Remote (the peer address) are logged.
	Kind   string
	Remote string
	// Body is read until io.EOF, which ends the session normally.
	Body io.Reader
	// Interrupt makes a Read of Body in progress return, and later Reads
	// fail. The Registry calls it at most once, from another goroutine,
	// while Ingest runs, to stop the session (takeover, Close). A Source
	// whose Reads can block must set it.
	Interrupt func()
}

// Summary describes a session, returned when it ends.
type Summary struct {
	Stream        string
	Epoch         uint64
	Kind          string
	Remote        string
	Started       time.Time
	Duration      time.Duration
	Bytes         uint64
	Frames        uint64
	Keyframes     uint64
	DecodeErrors  uint64
	PublishErrors uint64
}

// String renders the summary as one line of key=value pairs.
func (s Summary) String() string {
	return fmt.Sprintf("stream=%s epoch=%d bytes=%d frames=%d keyframes=%d decode_errors=%d publish_errors=%d duration=%s",
		s.Stream, s.Epoch, s.Bytes, s.Frames, s.Keyframes, s.DecodeErrors, s.PublishErrors, s.Duration.Round(time.Millisecond))
}

// Registry runs ingest sessions, one active session per stream.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	mu        sync.Mutex
	active    map[string]*session
	lastEpoch uint64
	closed    bool
	running   sync.WaitGroup
}

// NewRegistry returns a Registry. It fails when cfg.NewPublisher is nil.
func NewRegistry(cfg Config) (*Registry, error) {
	if cfg.NewPublisher == nil {
		return nil, errors.New("ingest: Config.NewPublisher is nil")
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 2 * time.Second
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Metrics
	if m == nil {
		m, _ = NewMetrics(nil) // cannot fail without a registerer
	}
	return &Registry{cfg: cfg, log: log, metrics: m, active: make(map[string]*session)}, nil
}

// Ingest runs a session of stream reading src until src.Body ends (nil
// error), ctx is done, the session is taken over (ErrTakenOver) or the
// Registry is closed (ErrClosed). It first stops the active session of the
// stream, if any, and waits until its Publisher is closed. Other errors wrap
// bus.ErrInvalidName (nothing was started), ErrPublisher, ErrSource or
// ErrStream. The Summary is filled in as far as the session got.
func (r *Registry) Ingest(ctx context.Context, stream string, src Source) (Summary, error) {
	sum := Summary{Stream: stream, Kind: src.Kind, Remote: src.Remote}
	if err := bus.ValidateName(stream); err != nil {
		return sum, fmt.Errorf("ingest: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return sum, ErrClosed
	}
	epoch := uint64(time.Now().UnixNano())
	if epoch <= r.lastEpoch {
		epoch = r.lastEpoch + 1
	}
	r.lastEpoch = epoch
	s := &session{
		reg:     r,
		stream:  stream,
		epoch:   epoch,
		src:     src,
		started: time.Now(),
		cancel:  cancel,
		done:    make(chan struct{}),
		live:    true,
		metrics: r.metrics.stream(stream),
		log:     r.log.With("stream", stream, "epoch", epoch, "source", src.Kind, "remote", src.Remote),
	}
	prev := r.active[stream]
	r.active[stream] = s
	r.running.Add(1)
	r.mu.Unlock()
	defer r.running.Done()
	defer r.finish(s)
	// Whatever ends the session's context (its parent, a takeover, Close)
	// also interrupts its source, so that a blocked Read returns.
	defer context.AfterFunc(ctx, func() { s.stop(context.Cause(ctx)) })()

	if prev != nil {
		r.metrics.takeovers.Inc()
		s.log.Info("taking over stream", "previous_epoch", prev.epoch, "previous_source", prev.src.Kind, "previous_remote", prev.src.Remote)
		prev.stop(ErrTakenOver)
		// The previous session is interrupted; its Publisher.Close is bounded
		// by CloseTimeout. Waiting even if ctx is done keeps one session
		// publishing at a time.
		<-prev.done
	}
	return s.run(ctx)
}

// finish removes s from the active sessions and marks it done.
func (r *Registry) finish(s *session) {
	r.mu.Lock()
	if r.active[s.stream] == s {
		delete(r.active, s.stream)
	}
	r.mu.Unlock()
	s.mu.Lock()
	s.live = false
	s.mu.Unlock()
	close(s.done)
}

// SessionInfo describes an active session.
type SessionInfo struct {
	Summary
	// Waiting is true while the session waits for the session it took
	// over to end.
	Waiting bool
}

// Sessions returns the active sessions, sorted by stream.
func (r *Registry) Sessions() []SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SessionInfo, 0, len(r.active))
	for _, s := range r.active {
		out = append(out, SessionInfo{Summary: s.summary(), Waiting: !s.publishing.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Close rejects new sessions, stops the active ones (ErrClosed) and waits
// until they have ended and closed their Publishers, or ctx is done.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	sessions := make([]*session, 0, len(r.active))
	for _, s := range r.active {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	for _, s := range sessions {
		s.stop(ErrClosed)
	}
	done := make(chan struct{})
	go func() {
		r.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: closing: %w", ctx.Err())
	}
}
