// Package ingesttest gives ingest tests a Publisher that records what a
// publication publishes, in place of the bus.
package ingesttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Recorder opens a Publication for every publication (NewPublisher) and
// keeps them in order.
type Recorder struct {
	mu     sync.Mutex
	pubs   []*Publication
	opened chan *Publication
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{opened: make(chan *Publication, 64)} }

// NewPublisher is an ingest.NewPublisherFunc.
func (r *Recorder) NewPublisher(_ context.Context, stream string, epoch uint64, _ func(time.Duration, error)) (ingest.Publisher, error) {
	p := &Publication{Stream: stream, Epoch: epoch, ended: make(chan struct{}), got: make(chan struct{}, 1)}
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	r.opened <- p
	return p, nil
}

// Publications returns ingest.Publications publishing into r; they are
// shut down when the test ends.
func (r *Recorder) Publications(t testing.TB) *ingest.Publications {
	t.Helper()
	ps, err := ingest.NewPublications(ingest.Config{NewPublisher: r.NewPublisher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ps.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// Opened waits for the next publication to go live, for at most timeout.
func (r *Recorder) Opened(t testing.TB, timeout time.Duration) *Publication {
	t.Helper()
	select {
	case p := <-r.opened:
		return p
	case <-time.After(timeout):
		t.Fatal("ingesttest: no publication went live")
		return nil
	}
}

// Count returns how many publications went live.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pubs)
}

// Publication is the Publisher of one publication.
type Publication struct {
	Stream string
	Epoch  uint64

	mu     sync.Mutex
	anns   []tsframes.Announcement
	frames []tsframes.Frame
	cues   []tsframes.Cue
	closed bool
	ended  chan struct{}
	got    chan struct{}
}

// Announce records a.
func (p *Publication) Announce(_ context.Context, a tsframes.Announcement) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return bus.ErrClosed
	}
	p.anns = append(p.anns, a)
	return nil
}

// Publish records f.
func (p *Publication) Publish(_ context.Context, f tsframes.Frame) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return bus.ErrClosed
	}
	p.frames = append(p.frames, f)
	select {
	case p.got <- struct{}{}:
	default:
	}
	return nil
}

// PublishCue records c.
func (p *Publication) PublishCue(_ context.Context, c tsframes.Cue) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return bus.ErrClosed
	}
	p.cues = append(p.cues, c)
	return nil
}

// Cues returns the cues published so far.
func (p *Publication) Cues() []tsframes.Cue {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tsframes.Cue(nil), p.cues...)
}

// SetIngestStats ignores s.
func (p *Publication) SetIngestStats(bus.IngestStats) {}

// Shutdown ends the publication.
func (p *Publication) Shutdown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.ended)
	}
	return nil
}

// Announcements returns what was announced so far.
func (p *Publication) Announcements() []tsframes.Announcement {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tsframes.Announcement(nil), p.anns...)
}

// Frames returns what was published so far.
func (p *Publication) Frames() []tsframes.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tsframes.Frame(nil), p.frames...)
}

// WaitEnded waits until the publication's Publisher was shut down, for at
// most timeout.
func (p *Publication) WaitEnded(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.ended:
	case <-time.After(timeout):
		t.Fatalf("ingesttest: publication of %s (epoch %d) did not end", p.Stream, p.Epoch)
	}
}

// WaitFrames waits until at least n frames were published, for at most
// timeout.
func (p *Publication) WaitFrames(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		have := len(p.frames)
		p.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-p.got:
		case <-p.ended:
			if len(p.Frames()) < n {
				t.Fatalf("ingesttest: publication ended after %d of %d frames", len(p.Frames()), n)
			}
			return
		case <-deadline:
			t.Fatalf("ingesttest: %d of %d frames published", have, n)
		}
	}
}

// Serve runs serve (a listener's Serve with its publications) until the
// test ends, then cancels its context and checks that it returned nil
// within 20 s.
func Serve(t testing.TB, serve func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return")
		}
	})
}
