package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Time-shift tuning.
const (
	// logFollowQueue bounds the messages a log reader holds between the
	// bus subscription and the pacing, once it follows the live end of the
	// log (the subscription itself buffers at most 256 messages, 16 MiB).
	logFollowQueue = 64
	// logMaxPause: a longer pause between two stored messages (the stream
	// stopped and came back) is played as this long.
	logMaxPause = 5 * time.Second
	// logMaxLate: a reader that falls more than this behind its pace (slow
	// reads) continues from where it is instead of sending the backlog in
	// a burst.
	logMaxLate = 2 * time.Second
	// logMaxSkip: a following subscription that skips more messages than
	// this (it resumes at the latest keyframe after a reconnect, see
	// bus.StaleBacklog) is replaced by a range reader from the last message
	// played. Smaller gaps are announcements purged by their rollup and the
	// parts of split frames.
	logMaxSkip = 16
	// logMaxRetries bounds the times in a row the log is opened again at
	// the same message.
	logMaxRetries = 3
	// logEndDrain bounds how long the viewers of a log that has ended
	// take to write the frames still in their queues before they end (a
	// slow viewer, or one whose peer is gone, ends with them unwritten).
	logEndDrain = 5 * time.Second
)

// errLogSkipped is follow's: the subscription skipped ahead of the log.
var errLogSkipped = errors.New("the subscription skipped ahead")

// logConfig is what a log reader needs: the connection, the catalog that
// tells whether the stream is still live (nil: it is taken as ended once
// the log is read), a logger, and how long to wait for a new message at
// the end of the log of a stream that is not live before it is over.
type logConfig struct {
	conn    *nats.Conn
	catalog catalogSource
	logger  *slog.Logger
	endIdle time.Duration
}

// logSubscription is the subscription of a time-shifted hub: it reads the
// stream's log from a past time and calls the handler with each message
// when it is due, so that the log plays in real time (the pace of the
// store times). Done is closed when it ends: Err then wraps ErrStreamEnded
// at the end of the log of a stream that is no longer live.
type logSubscription struct {
	cfg     logConfig
	name    string
	handler func(bus.Message)
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // written before done is closed
	pace    logPacer
	last    uint64    // stream sequence of the last message handled
	stored  time.Time // its store time
}

// subscribeLog opens the stream's log at the keyframe at or before at
// (bus.OpenRange) and reads it, paced, with its own bounded consumer: a
// range reader up to the message that was the newest at the start, then,
// when the stream is still live, a bus subscription from there on. ctx
// bounds the opening only. It returns bus.OpenRange's errors: bus.ErrNotFound
// for a stream that does not exist, a *bus.RangeError for a time outside
// its retention.
func subscribeLog(ctx context.Context, cfg logConfig, name string, at time.Time, handler func(bus.Message)) (subscription, error) {
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	// The range ends at the newest message stored when it is opened; the
	// end given here is only an upper bound.
	rr, err := bus.OpenRange(ctx, cfg.conn, name, at, time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	rr.DeliverCues()
	if err := rr.EarlierCues(ctx); err != nil {
		cfg.logger.Debug("time-shifted reader: earlier SCTE-35 cues not read", "stream", name, "err", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s := &logSubscription{
		cfg:     cfg,
		name:    name,
		handler: handler,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	cfg.logger.Debug("time-shifted log reader opened", "stream", name, "at", at.UTC().Format(time.RFC3339Nano),
		"keyframe_stored", rr.Start().UTC().Format(time.RFC3339Nano))
	go s.run(rctx, rr)
	return s, nil
}

func (s *logSubscription) Close() {
	s.cancel()
	<-s.done
}

func (s *logSubscription) Done() <-chan struct{} { return s.done }

func (s *logSubscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func (s *logSubscription) run(ctx context.Context, rr *bus.RangeReader) {
	defer close(s.done)
	defer s.pace.stop()
	var err error
	failed, at := 0, s.last // failed reads in a row at the same message
	for {
		if err = s.readRange(ctx, rr); err != nil && ctx.Err() == nil {
			// A fetch failed (a reconnect): read again from here.
			err = fmt.Errorf("relay: read the log of %q: %w: %w", s.name, errLogSkipped, err)
		}
		rr.Close()
		if err == nil {
			err = s.follow(ctx)
		}
		if s.last != at {
			failed, at = 0, s.last
		}
		if failed++; !errors.Is(err, errLogSkipped) || s.stored.IsZero() || failed > logMaxRetries || ctx.Err() != nil {
			break
		}
		s.cfg.logger.Info("time-shifted reader resumes from the log", "stream", s.name, "after_seq", s.last, "cause", err)
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rr, err = bus.OpenRange(octx, s.cfg.conn, s.name, s.stored, time.Now().Add(24*time.Hour))
		cancel()
		if err != nil {
			break
		}
		rr.DeliverCues()
	}
	if ctx.Err() == nil {
		s.err = err
	}
}

// readRange plays the range up to its end (io.EOF: nil), from the message
// after the last one played when it resumes.
func (s *logSubscription) readRange(ctx context.Context, rr *bus.RangeReader) error {
	resumed := s.last
	for {
		m, err := rr.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if resumed != 0 && m.Seq <= resumed {
			continue
		}
		if !s.play(ctx, m) {
			return ctx.Err()
		}
	}
}

// play waits until m is due and hands it to the handler; false when ctx
// ended first.
func (s *logSubscription) play(ctx context.Context, m bus.Message) bool {
	if !s.pace.wait(ctx, m.Published) {
		return false
	}
	s.handler(m)
	s.last = m.Seq
	if !m.Published.IsZero() {
		s.stored = m.Published
	}
	return true
}

// live reports whether the catalog says the stream is live.
func (s *logSubscription) live() bool {
	if s.cfg.catalog == nil {
		return false
	}
	e, ok := s.cfg.catalog.Get(s.name)
	return ok && e.State == bus.StateLive
}

// ended is the error at the end of the log.
func (s *logSubscription) ended() error {
	return fmt.Errorf("relay: stream %q: %w: end of its log", s.name, ErrStreamEnded)
}

// follow plays what is stored after the range: from the last message
// handled on (what it handled again is skipped), with a bus subscription
// that blocks while the pace holds the messages back. It returns at the
// end of the log of a stream that is not live (none stored for endIdle).
func (s *logSubscription) follow(ctx context.Context) error {
	if !s.live() {
		return s.ended()
	}
	queue := make(chan bus.Message, logFollowQueue)
	// The handler waits for room in queue until follow returns.
	hctx, stop := context.WithCancel(ctx)
	sub, err := bus.Subscribe(ctx, s.cfg.conn, s.name, bus.SubscribeOptions{FromSeq: s.last, Logger: s.cfg.logger, Cues: true},
		func(m bus.Message) {
			select {
			case queue <- m:
			case <-hctx.Done():
			}
		})
	if err != nil {
		stop()
		return fmt.Errorf("relay: follow the log of %q: %w", s.name, err)
	}
	defer func() {
		stop()
		sub.Close()
	}()
	s.cfg.logger.Debug("time-shifted log reader follows the stream", "stream", s.name, "from_seq", s.last)
	idle := time.NewTimer(s.cfg.endIdle)
	defer idle.Stop()
	skip := s.last
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.Done():
			if err := sub.Err(); err != nil {
				return err
			}
			return bus.ErrClosed
		case m := <-queue:
			if m.Seq <= skip {
				continue
			}
			if m.Seq > s.last+logMaxSkip {
				return fmt.Errorf("relay: follow the log of %q: %w: seq %d after %d", s.name, errLogSkipped, m.Seq, s.last)
			}
			if !s.play(ctx, m) {
				return ctx.Err()
			}
			idle.Reset(s.cfg.endIdle)
		case <-idle.C:
			if !s.live() {
				return s.ended()
			}
			idle.Reset(s.cfg.endIdle)
		}
	}
}

// logPacer holds each message of a log back until its time: the first one
// at once, each next one when as much time has passed as between their
// store times. A pause longer than logMaxPause is shortened to it, and a
// reader more than logMaxLate behind continues from where it is. Owned by
// one goroutine.
type logPacer struct {
	base  time.Time // when the message stored at ref is played
	ref   time.Time
	timer *time.Timer
}

// wait waits until the message stored at stored is due; false when ctx
// ended first. A message without a store time is due at once.
func (p *logPacer) wait(ctx context.Context, stored time.Time) bool {
	if stored.IsZero() {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.base.IsZero() {
		p.base, p.ref = now, stored
		return ctx.Err() == nil
	}
	d := stored.Sub(p.ref)
	if d > logMaxPause {
		// A pause in the log: play it shortened, from the previous message.
		p.base, p.ref = p.base.Add(logMaxPause), stored
		d = 0
	}
	due := p.base.Add(d)
	wait := due.Sub(now)
	if wait < -logMaxLate {
		p.base, p.ref = now, stored
		return ctx.Err() == nil
	}
	if d >= 0 {
		// Keep the reference close to the messages, so that a pause is
		// measured between neighbours.
		p.base, p.ref = due, stored
	}
	if wait <= 0 {
		return ctx.Err() == nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(wait)
	} else {
		p.timer.Reset(wait)
	}
	select {
	case <-p.timer.C:
		return true
	case <-ctx.Done():
		p.timer.Stop()
		return false
	}
}

func (p *logPacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// Announcement returns the latest announcement stored in the log of stream
// name: what a time-shifted viewer of a stream the catalog no longer lists
// negotiates. It returns an error wrapping bus.ErrNotFound when the stream
// or its announcement is not stored.
func (r *Relay) Announcement(ctx context.Context, name string) (bus.Announcement, error) {
	if r.cfg.Conn == nil {
		return bus.Announcement{}, fmt.Errorf("relay: announcement of %q: %w: no connection", name, bus.ErrNotFound)
	}
	js, err := jetstream.New(r.cfg.Conn)
	if err != nil {
		return bus.Announcement{}, fmt.Errorf("relay: announcement of %q: %w", name, err)
	}
	m, err := bus.LatestAnnouncement(ctx, js, name)
	if err != nil {
		return bus.Announcement{}, fmt.Errorf("relay: announcement of %q: %w", name, err)
	}
	if m.Tracks == nil {
		return bus.Announcement{}, fmt.Errorf("relay: announcement of %q: %w", name, bus.ErrNotFound)
	}
	ann := *m.Tracks
	if ann.Stream == "" {
		ann.Stream = name
	}
	return ann, nil
}
