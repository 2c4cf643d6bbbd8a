package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// ErrOutOfRange is returned by OpenRange for a range that does not overlap
// what the stream holds; the error is a *RangeError naming the window.
var ErrOutOfRange = errors.New("range outside the stream's retention")

// RangeError is the error of a range outside a stream's retention window.
type RangeError struct {
	// Stream is the stream name.
	Stream string
	// First is when the oldest keyframe still stored was stored, Last when
	// the newest message was; both zero when the stream holds no keyframe.
	First, Last time.Time
}

func (e *RangeError) Error() string {
	if e.First.IsZero() {
		return fmt.Sprintf("%s: stream %s holds no keyframe", ErrOutOfRange, e.Stream)
	}
	return fmt.Sprintf("%s: stream %s holds %s to %s", ErrOutOfRange, e.Stream,
		e.First.UTC().Format(time.RFC3339Nano), e.Last.UTC().Format(time.RFC3339Nano))
}

// Unwrap makes errors.Is(err, ErrOutOfRange) true.
func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// Range reader tuning: one fetch asks for at most rangeBatch messages and
// rangeMaxBytes bytes (the client-side buffer of a range), and waits at
// most rangeFetchWait for them; the keyframe scan fetches scanBatch
// headers at a time.
const (
	rangeBatch     = 64
	rangeMaxBytes  = 4 << 20
	rangeFetchWait = 2 * time.Second
	scanBatch      = 256
)

// RangeReader reads the messages of one media stream stored between two
// times, in stream order, with one unacknowledged pull consumer fetched in
// bounded batches (64 messages, 4 MiB): it pulls only as fast as Next is
// called. It is used by one goroutine. See OpenRange.
type RangeReader struct {
	subj    Subjects
	pull    *batchPuller
	dec     decoder
	to      time.Time
	lastSeq uint64 // the stream's last sequence when the range was opened
	cursor  uint64 // stream sequence of the last message received
	broken  bool   // video deltas are dropped until the next keyframe
	queue   []Message
	done    bool
	start   time.Time // store time of the first keyframe
}

// OpenRange opens the messages of stream name stored from the keyframe at
// or before from (the first stored keyframe when from is older) until to
// (or the newest message when to is later), as a RangeReader. Times are the
// NATS server's store times (Message.Published).
//
// It returns ErrNotFound when the stream does not exist, a *RangeError
// (ErrOutOfRange) when the range ends before the first stored keyframe or
// starts after the newest message, ErrInvalidName for a bad name. Finding
// the keyframe reads the headers of the stored keyframes once, from the
// oldest: a cost of one small message per GOP of retention.
func OpenRange(ctx context.Context, nc *nats.Conn, name string, from, to time.Time) (*RangeReader, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("bus: open range: nil connection")
	}
	if to.Before(from) {
		return nil, fmt.Errorf("bus: open range of %s: end %s before start %s", name, to, from)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
		defer cancel()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: open range of %s: %w", name, err)
	}
	st, err := js.Stream(ctx, subj.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("bus: open range of %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: open range of %s: %w", name, err)
	}
	info := st.CachedInfo()
	keySeq, at, first, err := keyframeAtOrBefore(ctx, js, subj, from)
	if err != nil {
		return nil, fmt.Errorf("bus: open range of %s: %w", name, err)
	}
	last := info.State.LastTime
	if keySeq == 0 || to.Before(first) || from.After(last) {
		if keySeq == 0 {
			first, last = time.Time{}, time.Time{}
		}
		return nil, &RangeError{Stream: name, First: first, Last: last}
	}
	pull, err := newBatchPuller(ctx, js, subj, subj.All, keySeq, false, rangeBatch, rangeMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("bus: open range of %s at seq %d: %w", name, keySeq, err)
	}
	dec := decoder{subj: subj}
	// The video played is the announced track's (docs/bus.md): know the
	// announcement even though the range starts after it. Best effort.
	if m, err := LatestAnnouncement(ctx, js, name); err == nil {
		dec.ann = m.Tracks
	}
	return &RangeReader{
		subj:    subj,
		pull:    pull,
		dec:     dec,
		to:      to,
		lastSeq: info.State.LastSeq,
		cursor:  keySeq - 1,
		start:   at,
	}, nil
}

// keyframeAtOrBefore returns the sequence and store time (at) of the last
// keyframe stored at or before t, or of the first one when none is; seq 0
// when the stream holds no keyframe. first is the store time of the oldest
// keyframe. It reads the keyframes' headers, from the oldest up to the
// latest (found by a direct get), with a headers-only pull consumer.
func keyframeAtOrBefore(ctx context.Context, js jetstream.JetStream, subj Subjects, t time.Time) (seq uint64, at, first time.Time, err error) {
	latest, err := LatestKeyframe(ctx, js, subj.Name)
	if errors.Is(err, ErrNotFound) {
		return 0, time.Time{}, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	pull, err := newBatchPuller(ctx, js, subj, subj.Key, 1, true, scanBatch, 0)
	if err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("keyframe scan: %w", err)
	}
	defer pull.close()
	for {
		m, err := pull.next(ctx)
		if err != nil {
			return 0, time.Time{}, time.Time{}, fmt.Errorf("keyframe scan: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return 0, time.Time{}, time.Time{}, fmt.Errorf("keyframe scan: %w", err)
		}
		if first.IsZero() {
			first = meta.Timestamp
		}
		if meta.Timestamp.After(t) && seq != 0 {
			return seq, at, first, nil
		}
		seq, at = meta.Sequence.Stream, meta.Timestamp
		if meta.Timestamp.After(t) || seq >= latest || meta.NumPending == 0 {
			return seq, at, first, nil
		}
	}
}

// Start returns the store time of the keyframe the range starts at.
func (r *RangeReader) Start() time.Time { return r.start }

// Next returns the next frame of the range, in stream order (one Message per
// audio packet, announcements included), or io.EOF after the last message
// stored at or before the range's end, or at the newest message stored when
// the range was opened. Frames are whole; after messages that aged out
// before they were read, video resumes at the next keyframe. ctx bounds the
// wait for the next message.
func (r *RangeReader) Next(ctx context.Context) (Message, error) {
	for len(r.queue) == 0 {
		if r.done {
			return Message{}, io.EOF
		}
		if err := r.fill(ctx); err != nil {
			return Message{}, err
		}
	}
	m := r.queue[0]
	r.queue[0] = Message{}
	r.queue = r.queue[1:]
	return m, nil
}

// fill reads one stored message and queues what it completes.
func (r *RangeReader) fill(ctx context.Context) error {
	m, err := r.pull.next(ctx)
	if err != nil {
		return fmt.Errorf("bus: range of %s: %w", r.subj.Name, err)
	}
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("bus: range of %s: %w", r.subj.Name, err)
	}
	seq := meta.Sequence.Stream
	if meta.Timestamp.After(r.to) {
		r.finish()
		return nil
	}
	if seq >= r.lastSeq || meta.NumPending == 0 {
		r.finish()
	}
	if seq != r.cursor+1 {
		// Messages aged out before they were read.
		r.dec.reset()
		r.broken = true
	}
	r.cursor = seq
	msg, ok, err := r.dec.push(seq, m.Subject(), m.Headers(), m.Data())
	if err != nil || !ok {
		// A malformed message is skipped like a lost one.
		if err != nil {
			r.broken = true
		}
		return nil
	}
	msg.Published = meta.Timestamp
	if msg.IsFrame() && msg.Frame.Kind == tsframes.KindVideo {
		if msg.Frame.Key {
			r.broken = false
		} else if r.broken {
			return nil
		}
	}
	if r.queue, err = msg.Frames(r.queue[:0]); err != nil {
		r.queue = r.queue[:0]
	}
	return nil
}

// finish marks the end of the range: what is still delivered is not read.
func (r *RangeReader) finish() {
	r.done = true
	r.pull.abandon()
}

// Close stops the reader now and deletes its consumer.
func (r *RangeReader) Close() {
	r.pull.close()
}

// batchPuller reads an unacknowledged pull consumer in batches: one fetch
// at a time, the next one when the previous is read or has expired. An
// abandoned fetch is cancelled, so nothing outlives close.
type batchPuller struct {
	js       jetstream.JetStream
	stream   string
	name     string
	cons     jetstream.Consumer
	batch    int
	maxBytes int
	cur      jetstream.MessageBatch
	cancel   context.CancelFunc // of cur
}

func newBatchPuller(ctx context.Context, js jetstream.JetStream, subj Subjects, filter string, start uint64, headersOnly bool, batch, maxBytes int) (*batchPuller, error) {
	name := "whepcast_range_" + nuid.Next()
	cons, err := js.CreateConsumer(ctx, subj.Stream, jetstream.ConsumerConfig{
		Name:              name,
		Description:       "whepcast range reader of " + subj.Name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     filter,
		HeadersOnly:       headersOnly,
		InactiveThreshold: consumerInactive,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	return &batchPuller{js: js, stream: subj.Stream, name: name, cons: cons, batch: batch, maxBytes: maxBytes}, nil
}

// next returns the next message, fetching a batch when none is pending.
func (p *batchPuller) next(ctx context.Context) (jetstream.Msg, error) {
	for {
		if p.cur == nil {
			fctx, cancel := context.WithTimeout(context.Background(), rangeFetchWait)
			opts := []jetstream.FetchOpt{jetstream.FetchContext(fctx)}
			if p.maxBytes > 0 {
				opts = append(opts, jetstream.FetchMaxBytes(p.maxBytes))
			}
			cur, err := p.cons.Fetch(p.batch, opts...)
			if err != nil {
				cancel()
				return nil, err
			}
			p.cur, p.cancel = cur, cancel
		}
		select {
		case m, ok := <-p.cur.Messages():
			if ok {
				return m, nil
			}
			err := p.cur.Error()
			p.abandon()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// abandon cancels the fetch in progress.
func (p *batchPuller) abandon() {
	if p.cancel != nil {
		p.cancel()
	}
	p.cur, p.cancel = nil, nil
}

// close abandons the fetch in progress and deletes the consumer (best
// effort; the inactivity threshold removes it otherwise).
func (p *batchPuller) close() {
	p.abandon()
	if !p.js.Conn().IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.js.DeleteConsumer(ctx, p.stream, p.name)
}
