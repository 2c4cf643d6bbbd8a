package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// seekKeyframeWait bounds how long a seek waits for its new hub to have a
// keyframe to replay (a shared hub created by the seek, or a log reader
// still fetching): without one, video resumes at the next keyframe.
const seekKeyframeWait = 2 * time.Second

// Position is where a viewer plays: the last frame written to it.
type Position struct {
	// PTS is the frame's presentation time on its stream's timeline (its
	// epoch's, unwrapped); Stored is when JetStream stored it (zero when
	// unknown or before the first frame).
	PTS    time.Duration
	Stored time.Time
	// Live is false while the viewer plays the log (JoinAt, or Seek to a
	// time), true when it plays the live feed.
	Live bool
}

// Position returns the viewer's position. It may be called from any
// goroutine.
func (v *Viewer) Position() Position {
	p := Position{
		PTS:  time.Duration(v.posPTS.Load()) * time.Second / videoClockRate,
		Live: !v.shifted.Load(),
	}
	if ns := v.posStored.Load(); ns != 0 {
		p.Stored = time.Unix(0, ns)
	}
	return p
}

// JoinAt is Join for a viewer that plays the stream's log from the
// keyframe at or before at (a JetStream store time), in real time: its own
// paced, bounded reader of the log, on a private hub, so that it lags the
// live edge by as much as it started behind. When the log is read up to
// its newest message and the stream is no longer live, the viewer ends with
// ErrStreamEnded once it has written the frames still in its queue (at most
// logEndDrain later). Besides Join's errors, JoinAt returns errors wrapping
// bus.ErrNotFound (no such stream) and bus.ErrOutOfRange (a
// *bus.RangeError: at is outside the stream's retention).
func (r *Relay) JoinAt(ctx context.Context, ann bus.Announcement, want Want, at time.Time) (*Viewer, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("relay: join %q: %w: zero time", ann.Stream, ErrInvalidConfig)
	}
	return r.join(ctx, ann, want, at)
}

// Seek moves the viewer, with its tracks and so its PeerConnection, to
// another point of its stream: to the keyframe at or before at (as JoinAt),
// or to the live feed when at is zero (as Join). The new point starts with
// its GOP replayed, like a new viewer's; sequence numbers and timestamps
// continue those sent before (they never go back). Frames sent before the
// seek are no longer retransmitted. It returns JoinAt's errors (the viewer
// then stays where it was), or the viewer's end error when it ended
// meanwhile.
func (v *Viewer) Seek(ctx context.Context, at time.Time) error {
	nh, err := v.acquire(ctx, v.ann, at)
	if err != nil {
		return fmt.Errorf("relay: seek %q: %w", v.stream, err)
	}
	// Wait for a keyframe to start from, outside the locks.
	wait := time.NewTimer(seekKeyframeWait)
	select {
	case <-nh.keyed:
	case <-wait.C:
	case <-ctx.Done():
	}
	wait.Stop()

	v.moveMu.Lock()
	defer v.moveMu.Unlock()
	old := v.hub
	old.mu.Lock()
	if v.ended {
		err := v.err
		old.mu.Unlock()
		v.release(nh)
		return fmt.Errorf("relay: seek %q: %w", v.stream, err)
	}
	old.detachLocked(v)
	close(v.quit) // the writer goroutine returns
	old.mu.Unlock()
	v.wg.Wait()
	for len(v.queue) > 0 {
		<-v.queue
	}
	v.release(old)

	v.hub = nh
	v.shifted.Store(!at.IsZero())
	v.quit = make(chan struct{})
	v.active, v.waitSet, v.needKey, v.overflow = false, false, false, false
	if v.video != nil {
		v.video.resync(nh.videoBuf)
	}
	if v.audio != nil {
		v.audio.resync(nh.audioBuf)
	}
	nh.mu.Lock()
	defer nh.mu.Unlock()
	if err := nh.admitLocked(v, false); err != nil {
		v.finishLocked(err)
		return fmt.Errorf("relay: seek %q: %w", v.stream, err)
	}
	if v.started {
		v.beginLocked(nh)
	}
	if at.IsZero() {
		v.log.Info("viewer sought to the live edge")
	} else {
		v.log.Info("viewer sought", "at", at.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
