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
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Config configures Publications.
type Config struct {
	// NewPublisher opens the Publisher of each publication (required).
	NewPublisher NewPublisherFunc
	// Metrics receives the ingest metrics; nil creates unregistered ones.
	Metrics *Metrics
	// Logger receives publication logs, with stream and epoch fields; nil
	// discards them.
	Logger *slog.Logger
	// StatsInterval is how often a publication hands its statistics to its
	// Publisher (default 2 s).
	StatsInterval time.Duration
	// CloseTimeout bounds the flush of a publication's Publisher when it
	// ends (default 5 s).
	CloseTimeout time.Duration
	// Takeover says whether a new publisher of a live stream takes it over
	// (TakeoverAllow, the zero value) or is refused (TakeoverDeny).
	Takeover TakeoverPolicy
}

// Source is the input of a publication.
type Source struct {
	// Kind ("http", "udp", ...) and Remote (the peer address) are logged.
	Kind   string
	Remote string
	// Body is read until io.EOF, which ends the publication normally.
	Body io.Reader
	// Interrupt makes a Read of Body in progress return, and later Reads
	// fail. Publications call it at most once, from another goroutine,
	// while Ingest runs, to stop the publication (takeover, Shutdown). A Source
	// whose Reads can block must set it.
	Interrupt func()
	// Frames, when set, turns Body into tracks and access units for h in
	// place of the MPEG-TS demuxer (RTMP, say): it reads body (Body, counted)
	// until it ends (nil) or fails, and returns h's error when h fails.
	Frames func(ctx context.Context, body io.Reader, h tsframes.Sink) error
}

// Summary describes a publication, returned when it ends.
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

// Publications runs the publications of every stream, one live publication
// per stream.
type Publications struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	mu        sync.Mutex
	live      map[string]*publication   // the publication of each stream
	all       map[*publication]struct{} // live and not yet live
	lastEpoch uint64
	closed    bool
	running   sync.WaitGroup
}

// NewPublications returns Publications. It fails when cfg.NewPublisher is
// nil or cfg.Takeover is not a TakeoverPolicy.
func NewPublications(cfg Config) (*Publications, error) {
	if cfg.NewPublisher == nil {
		return nil, errors.New("ingest: Config.NewPublisher is nil")
	}
	if cfg.Takeover != TakeoverAllow && cfg.Takeover != TakeoverDeny {
		return nil, fmt.Errorf("ingest: Config.Takeover: unknown %v", cfg.Takeover)
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
	return &Publications{
		cfg: cfg, log: log, metrics: m,
		live: make(map[string]*publication),
		all:  make(map[*publication]struct{}),
	}, nil
}

// Ingest runs a publication of stream reading src until src.Body ends (nil
// error), ctx is done, the publication is taken over (ErrTakenOver) or
// Publications shuts down (ErrClosed).
//
// The publication goes live, and opens its Publisher with a new epoch, only
// once src has delivered the stream's tracks and its first access unit. If
// another publication of the stream is live then, it is stopped and its
// Publisher closed first, or, with TakeoverDeny, Ingest fails with ErrLive
// (also at once when the stream is live as Ingest starts). Until then the
// live publication is untouched: a body that is not MPEG-TS (ErrNotTS) or
// fails never takes a stream over. A body that ends before its first access
// unit ends the publication without error and without publishing.
//
// Other errors wrap bus.ErrInvalidName (nothing was started), ErrPublisher,
// ErrSource or ErrStream. The Summary is filled in as far as the publication
// got.
func (ps *Publications) Ingest(ctx context.Context, stream string, src Source) (Summary, error) {
	sum := Summary{Stream: stream, Kind: src.Kind, Remote: src.Remote}
	if err := bus.ValidateName(stream); err != nil {
		return sum, fmt.Errorf("ingest: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return sum, ErrClosed
	}
	if prev := ps.live[stream]; prev != nil && ps.cfg.Takeover == TakeoverDeny {
		ps.mu.Unlock()
		ps.log.Info("ingest refused: the stream is live and takeover is denied", "stream", stream,
			"source", src.Kind, "remote", src.Remote, "live_epoch", prev.epoch)
		return sum, ErrLive
	}
	p := &publication{
		pubs:    ps,
		stream:  stream,
		src:     src,
		started: time.Now(),
		cancel:  cancel,
		done:    make(chan struct{}),
		running: true,
		metrics: ps.metrics.stream(stream),
		proto:   ps.metrics.protocol(src.Kind),
		log:     ps.log.With("stream", stream, "source", src.Kind, "remote", src.Remote),
	}
	ps.all[p] = struct{}{}
	ps.running.Add(1)
	ps.mu.Unlock()
	defer ps.running.Done()
	defer ps.finish(p)
	// Whatever ends the publication's context (its parent, a takeover,
	// Shutdown) also interrupts its source, so that a blocked Read returns.
	defer context.AfterFunc(ctx, func() { p.stop(context.Cause(ctx)) })()
	return p.run(ctx)
}

// goLive makes p the live publication of its stream, with a new epoch,
// once the publication that was live (if any) has ended and closed its
// Publisher; it fails with ErrLive when a publication is live and takeover
// is denied, with ErrClosed after Shutdown.
func (ps *Publications) goLive(p *publication) error {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return ErrClosed
	}
	prev := ps.live[p.stream]
	if prev != nil && ps.cfg.Takeover == TakeoverDeny {
		ps.mu.Unlock()
		return ErrLive
	}
	epoch := uint64(time.Now().UnixNano())
	if epoch <= ps.lastEpoch {
		epoch = ps.lastEpoch + 1
	}
	ps.lastEpoch = epoch
	p.epoch = epoch
	p.log = p.log.With("epoch", epoch)
	ps.live[p.stream] = p
	ps.mu.Unlock()

	if prev != nil {
		ps.metrics.takeovers.Inc()
		p.log.Info("taking over stream", "previous_epoch", prev.epoch, "previous_source", prev.src.Kind, "previous_remote", prev.src.Remote)
		prev.stop(ErrTakenOver)
		// The previous publication is interrupted; its Publisher.Close is
		// bounded by CloseTimeout. Waiting even if p is stopped meanwhile
		// keeps one publication publishing at a time.
		<-prev.done
	}
	return nil
}

// finish removes p from the publications and marks it done.
func (ps *Publications) finish(p *publication) {
	ps.mu.Lock()
	if ps.live[p.stream] == p {
		delete(ps.live, p.stream)
	}
	delete(ps.all, p)
	ps.mu.Unlock()
	p.mu.Lock()
	p.running = false
	p.mu.Unlock()
	close(p.done)
}

// PublicationInfo describes a live publication.
type PublicationInfo struct {
	Summary
	// Waiting is true while the publication waits for the publication it
	// took over to end.
	Waiting bool
}

// Live returns the live publications, sorted by stream.
func (ps *Publications) Live() []PublicationInfo {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]PublicationInfo, 0, len(ps.live))
	for _, s := range ps.live {
		out = append(out, PublicationInfo{Summary: s.summary(), Waiting: !s.publishing.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Shutdown rejects new publications, stops the running ones (ErrClosed)
// and waits until they have ended and closed their Publishers, or ctx is done.
func (ps *Publications) Shutdown(ctx context.Context) error {
	ps.mu.Lock()
	ps.closed = true
	all := make([]*publication, 0, len(ps.all))
	for p := range ps.all {
		all = append(all, p)
	}
	ps.mu.Unlock()
	for _, p := range all {
		p.stop(ErrClosed)
	}
	done := make(chan struct{})
	go func() {
		ps.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: shutting down: %w", ctx.Err())
	}
}
