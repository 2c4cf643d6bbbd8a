package relay

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// newPublisher opens the publisher of stream name in epoch (which creates
// the stream); it is closed at the end of the test.
func newPublisher(t testing.TB, nc *nats.Conn, name string, epoch uint64) *bus.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p, err := bus.NewPublisher(ctx, nc, name, bus.PublisherConfig{Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// feed publishes events with p. speed > 0 paces the frames by their PTS
// (speed 1 = real time); shift is added to every PTS and DTS.
type feed struct {
	events []event
	speed  float64
	shift  int64
	// marked, when set, is closed once mark video frames are published.
	mark   int
	marked chan struct{}
}

// run publishes f; it is meant to run in its own goroutine.
func (f feed) run(ctx context.Context, p *bus.Publisher) error {
	var (
		t0    time.Time
		first int64
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for _, e := range f.events {
		if e.ann != nil {
			if err := p.Announce(ctx, *e.ann); err != nil {
				return err
			}
			continue
		}
		fr := *e.frame
		fr.PTS += f.shift
		fr.DTS += f.shift
		if f.speed > 0 {
			if t0.IsZero() {
				t0, first = time.Now(), fr.PTS
			}
			at := t0.Add(time.Duration(float64(fr.PTS-first) / 90000 / f.speed * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if err := p.Publish(ctx, fr); err != nil {
			return err
		}
		if fr.Kind == tsframes.KindVideo && f.marked != nil {
			if f.mark--; f.mark == 0 {
				close(f.marked)
			}
		}
	}
	return nil
}

// start runs f in a goroutine; the returned channel gets its result.
func (f feed) start(t testing.TB, p *bus.Publisher) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer cancel()
		done <- f.run(ctx, p)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return done
}

// startMarked starts f (see start) and returns once its first f.mark video
// frames are published, failing the test after 20 s.
func (f feed) startMarked(t testing.TB, p *bus.Publisher) <-chan error {
	t.Helper()
	f.marked = make(chan struct{})
	done := f.start(t, p)
	select {
	case <-f.marked:
	case <-time.After(20 * time.Second):
		t.Fatal("publisher did not get there")
	}
	return done
}

// busAnnouncement is the bus announcement of the first PMT of events.
func busAnnouncement(name string, epoch uint64, events []event) bus.Announcement {
	for _, e := range events {
		if e.ann != nil {
			return bus.NewAnnouncement(name, epoch, *e.ann)
		}
	}
	return bus.Announcement{Stream: name, Epoch: epoch}
}

// newBusRelay returns a relay on nc, closed at the end of the test.
func newBusRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}
