package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Track publisher limits.
const (
	// trackMaxInFlight bounds the messages of a TrackPublisher awaiting
	// their acknowledgement (audio: 50 messages a second at most).
	trackMaxInFlight = 64
	// trackStallWait is how long Publish waits for room before it drops.
	trackStallWait = 200 * time.Millisecond
	// trackFlushTimeout bounds the wait for the messages in flight at Close.
	trackFlushTimeout = time.Second
)

// TrackPublisher publishes the frames of a derived track (one that a
// transcoding stage makes from the source's, docs/transcoding.md) into one
// epoch of a media stream, on the audio or video subjects with that epoch,
// each marked Whepcast-Derived. It writes
// neither announcements nor the catalog entry: the publication's Publisher
// announces the derived track. Publish is asynchronous and never waits
// longer than 200 ms for room; a frame that finds none is dropped and
// counted. It is used by one goroutine.
type TrackPublisher struct {
	window  *sendWindow
	enc     encoder
	name    string
	maxData int

	frames, dropped, errs atomic.Uint64
	closeOnce             sync.Once
}

// TrackStats are the counters of a TrackPublisher.
type TrackStats struct {
	Frames  uint64 // frames handed to NATS
	Dropped uint64 // frames not published (no room, or a publish error)
	Errors  uint64 // NATS errors: failed publishes and acknowledgements
}

// NewTrackPublisher returns a TrackPublisher for epoch of stream name. The
// stream must exist (the publication's Publisher created it); the
// connection stays the caller's. It returns ErrInvalidName for a bad name.
func NewTrackPublisher(nc *nats.Conn, name string, epoch uint64) (*TrackPublisher, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("bus: new track publisher: nil connection")
	}
	enc := newEncoder(subj, epoch)
	enc.derived = true
	p := &TrackPublisher{enc: enc, name: name, maxData: partSize(nc.MaxPayload())}
	w, err := newSendWindow(nc, trackMaxInFlight, func(*nats.Msg) {}, func(*nats.Msg, error) { p.errs.Add(1) })
	if err != nil {
		return nil, fmt.Errorf("bus: new track publisher %q: %w", name, err)
	}
	p.window = w
	return p, nil
}

// Publish publishes one audio or video frame (its PID is not carried). It
// returns an error wrapping ErrDropped when the frame was not handed to
// NATS.
func (p *TrackPublisher) Publish(f tsframes.Frame) error {
	if f.Kind != tsframes.KindAudio && f.Kind != tsframes.KindVideo {
		return fmt.Errorf("bus: track publisher %s: %s frame: only audio and video are published", p.name, f.Kind)
	}
	f.More = false
	msgs, err := p.enc.frame(f.Kind == tsframes.KindVideo, []tsframes.Frame{f}, p.maxData)
	if err != nil {
		p.dropped.Add(1)
		return fmt.Errorf("bus: publish %s: %w: %w", p.name, ErrDropped, err)
	}
	for _, m := range msgs {
		if err := p.window.publish(m, time.Now().Add(trackStallWait)); err != nil {
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				p.errs.Add(1)
			}
			p.dropped.Add(1)
			return fmt.Errorf("bus: publish %s: %w: %w", p.name, ErrDropped, err)
		}
	}
	p.frames.Add(1)
	return nil
}

// Stats returns the counters.
func (p *TrackPublisher) Stats() TrackStats {
	return TrackStats{Frames: p.frames.Load(), Dropped: p.dropped.Load(), Errors: p.errs.Load()}
}

// Close waits up to a second for the messages in flight, then forgets
// them. It does not close the connection.
func (p *TrackPublisher) Close() {
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), trackFlushTimeout)
		defer cancel()
		_ = p.window.close(ctx)
	})
}
