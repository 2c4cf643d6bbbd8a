// Package demo loops a small bundled clip as a live stream, for
// `broker --demo` and for end-to-end tests.
//
// Loop publishes the clip's announcement once and then its frames forever,
// each at the wall-clock time its decode timestamp says; timestamps continue
// across the loop point as if the clip went on, and pacing does not drift.
// When publishing falls more than MaxLag behind, the schedule moves forward
// instead of bursting to catch up.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// StreamName is the name `broker --demo` publishes the clip as.
const StreamName = "demo"

// MaxLag is how far behind its schedule Loop may fall before it moves the
// schedule forward instead of catching up.
const MaxLag = time.Second

//go:embed sample.ts
var sample []byte

// Sample returns a copy of the bundled MPEG-TS clip (sample.ts, made by
// gen-sample.sh): 10 s of 640x360@30 H.264 constrained baseline (1 s GOP, no
// B-frames, so DTS equals PTS) with a burnt-in clock and frame counter, and
// Opus 48 kHz stereo carrying a tone whose pitch changes every second.
func Sample() []byte {
	return bytes.Clone(sample)
}

// Publisher receives the clip. *bus.Publisher satisfies it.
type Publisher interface {
	Announce(ctx context.Context, a tsframes.Announcement) error
	Publish(ctx context.Context, f tsframes.Frame) error
}

// Clock tells the time and waits. The zero Options use the system clock.
type Clock interface {
	Now() time.Time
	// After sends the time on the returned channel once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// Options configure Loop.
type Options struct {
	// Sample is the MPEG-TS clip to loop; nil means the bundled one.
	Sample []byte
	// Clock paces the frames; nil means the system clock.
	Clock Clock
	// Logger receives the loop's events; nil discards them.
	Logger *slog.Logger
}

// Loop publishes the clip through pub until ctx is done, then returns
// ctx.Err(). It returns earlier with an error wrapping ErrEmptySample (no
// H.264 or Opus frame in the clip), the demuxer's error (the clip is not
// MPEG-TS), or the error of Announce. An error of Publish is logged and the
// frame skipped, except one wrapping bus.ErrClosed, which ends the loop.
func Loop(ctx context.Context, pub Publisher, opts Options) error {
	if pub == nil {
		return errors.New("demo: nil Publisher")
	}
	if opts.Sample == nil {
		opts.Sample = sample
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := loadClip(ctx, opts.Sample)
	if err != nil {
		return err
	}
	opts.Logger.Info("demo: looping the clip",
		"frames", len(c.frames), "period", ticksToDuration(c.period), "tracks", len(c.announcement.Tracks))
	return c.loop(ctx, pub, opts.Clock, opts.Logger)
}

// loop announces the clip and publishes its frames until ctx is done.
func (c *clip) loop(ctx context.Context, pub Publisher, clock Clock, logger *slog.Logger) error {
	if err := pub.Announce(ctx, c.announcement); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("demo: announcing the clip's tracks: %w", err)
	}
	origin := c.frames[0].DTS
	start := clock.Now()
	var failures uint64
	for pass := int64(0); ; pass++ {
		offset := pass * c.period
		for i := range c.frames {
			f := c.frames[i]
			due := start.Add(ticksToDuration(f.DTS + offset - origin))
			if err := waitUntil(ctx, clock, due); err != nil {
				return err
			}
			if late := clock.Now().Sub(due); late > MaxLag {
				logger.Warn("demo: publishing fell behind; moving the schedule", "late", late)
				start = start.Add(late)
			}
			f.PTS += offset
			f.DTS += offset
			f.Data = bytes.Clone(f.Data) // the receiver owns it
			if err := pub.Publish(ctx, f); err != nil {
				switch {
				case ctx.Err() != nil:
					return ctx.Err()
				case errors.Is(err, bus.ErrClosed):
					return fmt.Errorf("demo: publishing: %w", err)
				}
				failures++
				if failures == 1 || failures%100 == 0 {
					logger.Warn("demo: a frame could not be published", "err", err, "failures", failures)
				}
			}
		}
		logger.Debug("demo: pass done", "pass", pass)
	}
}

// waitUntil returns when the clock reaches t, or ctx.Err() when ctx is done
// first.
func waitUntil(ctx context.Context, clock Clock, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := t.Sub(clock.Now())
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// ticksToDuration converts a span of the 90 kHz clock to a time.Duration
// without overflowing for spans up to the limits of time.Duration.
func ticksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks/90000)*time.Second + time.Duration(ticks%90000)*time.Second/90000
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
