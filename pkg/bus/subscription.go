package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Subscription tuning.
const (
	// consumerHeartbeat is the idle heartbeat of the pull consumer; two
	// missed heartbeats (a broker restart dropped the consumer) make the
	// subscription resume on a new consumer.
	consumerHeartbeat = time.Second
	consumerExpiry    = 5 * time.Second
	// consumerInactive lets the server remove the consumer of a
	// subscriber that vanished without Close.
	consumerInactive = 30 * time.Second
	// pullMaxMessages and pullMaxBytes bound the client-side buffer.
	pullMaxMessages = 256
	pullMaxBytes    = 16 << 20
	// retryMin and retryMax bound the wait between attempts to find the
	// stream or create a consumer.
	retryMin = 250 * time.Millisecond
	retryMax = 2 * time.Second
)

// SubscribeOptions configure Subscribe.
type SubscribeOptions struct {
	// FromSeq is the stream sequence to start at. 0 starts at the latest
	// keyframe, or with the messages published after Subscribe when the
	// stream holds no keyframe.
	FromSeq uint64
	// Logger receives warnings (default: discarded).
	Logger *slog.Logger
	// SourceVideo delivers the source's video frames, those without
	// Whepcast-Derived, whatever the announcement plays: for a
	// transcoding stage that re-encodes them. By default the video
	// delivered is the announced video track's (a derived H.264 track's
	// frames when it is derived, docs/bus.md).
	SourceVideo bool
	// Cues delivers the stream's SCTE-35 cues too (Message.Cue); readers
	// that do not ask never see them.
	Cues bool
}

// Subscription delivers the messages of one media stream, in stream order,
// to a handler. See Subscribe.
type Subscription struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subj    Subjects
	handler func(Message)
	logger  *slog.Logger
	frames  []Message // scratch of the run loop: the frames of one message

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error

	// Owned by the run goroutine after Subscribe returns.
	created     time.Time // creation time of the stream being read
	cursor      uint64    // stream sequence of the last message received
	lastDeliver uint64    // consumer sequence of the last message received
	lastStored  time.Time // store time of the last message received
	consName    string
	it          jetstream.MessagesContext
	dec         decoder
	badLog      logLimiter
}

// Subscribe reads stream name with one ordered, unacknowledged consumer on
// media.NAME.> and calls handler from one goroutine, in stream order, with
// each announcement and each (reassembled) frame.
//
// ctx bounds the set-up only: waiting for the stream to exist (woken by the
// stream-created advisory), finding the latest keyframe and creating the
// consumer. Once Subscribe has returned, the subscription runs until Close or
// until the connection is closed. It survives reconnects and broker restarts
// (with file storage) by resuming right after the last message it received;
// a stream that was deleted and created again (its creation time changed)
// is read from its first message; a stream that disappears is waited for.
//
// A sequence gap seen by the handler means the messages aged out before
// they were read, never that the subscription skipped them. The handler must
// not call Close.
func Subscribe(ctx context.Context, nc *nats.Conn, name string, opts SubscribeOptions, handler func(Message)) (*Subscription, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return nil, err
	}
	if nc == nil || handler == nil {
		return nil, errors.New("bus: subscribe: nil connection or handler")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", name, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Subscription{
		nc:      nc,
		js:      js,
		subj:    subj,
		handler: handler,
		logger:  logger.With("stream", name),
		done:    make(chan struct{}),
		dec:     decoder{subj: subj, sourceVideo: opts.SourceVideo, cues: opts.Cues},
	}
	info, err := s.waitStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", name, err)
	}
	s.created = info.Created

	start := opts.FromSeq
	if start == 0 {
		seq, err := LatestKeyframe(ctx, js, name)
		switch {
		case err == nil:
			start = seq
		case errors.Is(err, ErrNotFound):
			start = info.State.LastSeq + 1
		default:
			return nil, fmt.Errorf("bus: subscribe %s: %w", name, err)
		}
	}
	// Know the PIDs of the current epoch even when starting after the
	// announcement (the rollup keeps only the latest one). Best effort:
	// frames of an epoch whose announcement is unknown carry PID 0.
	if m, err := LatestAnnouncement(ctx, js, name); err == nil {
		s.dec.ann = m.Tracks
	}
	s.cursor = start - 1
	if err := s.startConsumer(ctx, start); err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", name, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(rctx)
	return s, nil
}

// Close ends the subscription now and waits until the handler has
// returned for the last time. It may be called more than once, not from
// the handler.
func (s *Subscription) Close() {
	s.closeOnce.Do(s.cancel)
	<-s.done
}

// Done is closed when the subscription has ended (Close, or a closed
// connection).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended on its own (for example
// nats.ErrConnectionClosed); nil while it runs and after Close.
func (s *Subscription) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *Subscription) setErr(err error) {
	s.errMu.Lock()
	s.err = err
	s.errMu.Unlock()
}

func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	defer s.stopConsumer()
	rw := watchReconnects(s.nc)
	defer rw.stop()
	for {
		nctx, cancel := context.WithCancel(ctx)
		rw.arm(cancel)
		m, err := s.it.Next(jetstream.NextContext(nctx))
		reconnected := rw.disarm()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if s.nc.IsClosed() {
				s.setErr(fmt.Errorf("bus: subscription %s: %w", s.subj.Name, nats.ErrConnectionClosed))
				return
			}
			if reconnected {
				s.logger.Info("reconnected, resuming on a new consumer", "resume_seq", s.cursor+1)
			} else {
				s.logger.Info("subscription interrupted, resuming", "resume_seq", s.cursor+1, "err", err)
			}
			if !s.restart(ctx) {
				return
			}
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			s.logBad(err)
			continue
		}
		if meta.Sequence.Consumer != s.lastDeliver+1 {
			s.logger.Info("consumer sequence gap, resuming", "resume_seq", s.cursor+1,
				"want", s.lastDeliver+1, "got", meta.Sequence.Consumer)
			if !s.restart(ctx) {
				return
			}
			continue
		}
		s.lastDeliver = meta.Sequence.Consumer
		if meta.Sequence.Stream != s.cursor+1 {
			// Messages aged out (or were discarded) before we read them.
			s.dec.reset()
		}
		s.cursor = meta.Sequence.Stream
		s.lastStored = meta.Timestamp
		msg, ok, err := s.dec.push(meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data())
		if err != nil {
			s.logBad(err)
		}
		if ok {
			msg.Published = meta.Timestamp
			var ferr error
			if s.frames, ferr = msg.Frames(s.frames[:0]); ferr != nil {
				s.logBad(ferr)
			}
			for _, fm := range s.frames {
				s.handler(fm)
			}
			clear(s.frames)
		}
		if reconnected {
			s.logger.Info("reconnected, resuming on a new consumer", "resume_seq", s.cursor+1)
			if !s.restart(ctx) {
				return
			}
		}
	}
}

// reconnectWatch tells the run loop that the connection reconnected: the
// consumer may be gone (a restarted server keeps no memory consumer), so
// the subscription resumes at once on a new one rather than after missed
// heartbeats. It cancels the Next in progress, or the next one armed.
type reconnectWatch struct {
	nc     *nats.Conn
	status chan nats.Status
	done   chan struct{}

	mu      sync.Mutex
	cancel  context.CancelFunc // of the Next in progress, nil between
	pending bool               // a reconnect not yet acted upon
}

func watchReconnects(nc *nats.Conn) *reconnectWatch {
	w := &reconnectWatch{nc: nc, status: nc.StatusChanged(nats.CONNECTED), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for range w.status {
			w.mu.Lock()
			w.pending = true
			if w.cancel != nil {
				w.cancel()
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// arm registers the cancel function of the next Next; it is called at once
// when a reconnect is pending.
func (w *reconnectWatch) arm(cancel context.CancelFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel = cancel
	if w.pending {
		cancel()
	}
}

// disarm ends a Next and reports (and clears) a pending reconnect.
func (w *reconnectWatch) disarm() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel = nil
	p := w.pending
	w.pending = false
	return p
}

func (w *reconnectWatch) stop() {
	w.nc.RemoveStatusListener(w.status)
	<-w.done
}

func (s *Subscription) logBad(err error) {
	if s.badLog.allow(time.Now()) {
		s.logger.Warn("skipping malformed message", "err", err)
	}
}

// restart replaces the consumer: it resumes after the last message received,
// or at the first message of a stream that was recreated, waiting for the
// stream when it is gone. It returns false when the subscription must end
// (ctx done, or connection closed).
func (s *Subscription) restart(ctx context.Context) bool {
	s.stopConsumer()
	backoff := retryMin
	for {
		info, err := s.waitStream(ctx)
		if err != nil {
			if s.nc.IsClosed() && ctx.Err() == nil {
				s.setErr(fmt.Errorf("bus: subscription %s: %w", s.subj.Name, nats.ErrConnectionClosed))
			}
			return false
		}
		start := s.cursor + 1
		if !info.Created.Equal(s.created) {
			start = max(info.State.FirstSeq, 1)
			s.logger.Warn("stream was recreated, reading it from its start",
				"old_created", s.created, "created", info.Created, "start_seq", start)
			s.created = info.Created
			s.dec.reset()
			s.cursor = start - 1
		}
		start = s.skipStale(ctx, info, start)
		err = s.startConsumer(ctx, start)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if s.nc.IsClosed() {
			s.setErr(fmt.Errorf("bus: subscription %s: %w", s.subj.Name, nats.ErrConnectionClosed))
			return false
		}
		s.logger.Info("create consumer failed, retrying", "err", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, retryMax)
	}
}

// waitStream returns the stream's info, waiting for the stream to exist:
// woken by the JetStream stream-created advisory, and retrying with backoff
// in case an advisory was missed or the server was unreachable.
func (s *Subscription) waitStream(ctx context.Context) (*jetstream.StreamInfo, error) {
	wake := make(chan struct{}, 1)
	var adv *nats.Subscription
	defer func() {
		if adv != nil {
			_ = adv.Unsubscribe()
		}
	}()
	backoff := retryMin
	for {
		st, err := s.js.Stream(ctx, s.subj.Stream)
		if err == nil {
			return st.CachedInfo(), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if s.nc.IsClosed() {
			return nil, nats.ErrConnectionClosed
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if adv == nil {
				adv, _ = s.nc.Subscribe(streamCreatedAdvisory+s.subj.Stream, func(*nats.Msg) {
					select {
					case wake <- struct{}{}:
					default:
					}
				})
				// Subscribed after the lookup: look again at once.
				continue
			}
		} else {
			s.logger.Debug("stream lookup failed, retrying", "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, retryMax)
	}
}

// streamCreatedAdvisory prefixes the advisory JetStream publishes when a
// stream is created.
const streamCreatedAdvisory = "$JS.EVENT.ADVISORY.STREAM.CREATED."

func (s *Subscription) startConsumer(ctx context.Context, start uint64) error {
	name := "whepcast_" + nuid.Next()
	cons, err := s.js.CreateConsumer(ctx, s.subj.Stream, jetstream.ConsumerConfig{
		Name:              name,
		Description:       "whepcast subscriber of " + s.subj.Name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     s.subj.All,
		InactiveThreshold: consumerInactive,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("create consumer at seq %d: %w", start, err)
	}
	it, err := cons.Messages(
		jetstream.PullMaxMessagesWithBytesLimit(pullMaxMessages, pullMaxBytes),
		jetstream.PullExpiry(consumerExpiry),
		jetstream.PullHeartbeat(consumerHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true),
	)
	if err != nil {
		s.deleteConsumer(name)
		return fmt.Errorf("consume from seq %d: %w", start, err)
	}
	s.it, s.consName, s.lastDeliver = it, name, 0
	return nil
}

// stopConsumer stops the current iterator and deletes its consumer (best
// effort; the inactivity threshold removes it otherwise).
func (s *Subscription) stopConsumer() {
	if s.it == nil {
		return
	}
	s.it.Stop()
	s.it = nil
	s.deleteConsumer(s.consName)
	s.consName = ""
}

func (s *Subscription) deleteConsumer(name string) {
	if !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.subj.Stream, name)
}

// sleepCtx waits for d or ctx; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// StaleBacklog is how far behind the stream's newest message a resuming
// subscription may be before it skips ahead to the latest keyframe.
const StaleBacklog = time.Second

// skipStale returns where a resuming subscription starts: at start, or,
// when the messages stored since the last one it received span more than
// StaleBacklog and a keyframe was stored since, at that keyframe (at the
// announcement before it, when it was stored after start): playing the
// backlog would send its viewers seconds of stale media in one burst.
func (s *Subscription) skipStale(ctx context.Context, info *jetstream.StreamInfo, start uint64) uint64 {
	if s.lastStored.IsZero() || info.State.LastTime.Sub(s.lastStored) <= StaleBacklog {
		return start
	}
	key, err := LatestKeyframe(ctx, s.js, s.subj.Name)
	if err != nil {
		return start
	}
	annSeq := uint64(0)
	if a, err := LatestAnnouncement(ctx, s.js, s.subj.Name); err == nil {
		annSeq = a.Seq
	}
	to := resumeAt(start, key, annSeq)
	if to != start {
		s.logger.Info("resuming at the latest keyframe, past the backlog stored while away",
			"from_seq", start, "to_seq", to, "backlog", info.State.LastTime.Sub(s.lastStored).Round(time.Millisecond))
		s.dec.reset()
		s.cursor = to - 1
	}
	return to
}

// resumeAt is where to resume instead of start when the keyframe at key
// (0: none) and the announcement at ann (0: none) are the latest: the
// keyframe, or the announcement when it lies between start and the keyframe
// (it is published just before each keyframe, and may begin a new epoch);
// start when the keyframe is not past it.
func resumeAt(start, key, ann uint64) uint64 {
	if key <= start {
		return start
	}
	if ann >= start && ann < key {
		return ann
	}
	return key
}
