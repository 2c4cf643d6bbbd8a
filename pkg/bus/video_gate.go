package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// videoGate decides which video frames a Publisher may hand to NATS after
// a loss, so that no delta is stored without the frames it references:
//
//   - after a dropped video frame, deltas are dropped up to the next
//     keyframe;
//   - after JetStream lost, or may have lost, video (the in-flight window
//     abandoned, or a video message of the current GOP not acknowledged),
//     deltas are dropped until a keyframe is acknowledged, not merely
//     published: published into a stream without a leader, a keyframe is
//     lost while the deltas after it may be stored once the leader is back.
//     The first delta after that keyframe waits for its acknowledgement.
//
// Every method is called by the publishing goroutine (under the
// Publisher's lock), except acked and failed, which the acknowledgement
// handlers call from NATS goroutines.
type videoGate struct {
	// broken: a video frame was dropped, deltas wait for a keyframe.
	broken bool
	// needKeyAck: video may have been lost, deltas wait for a keyframe
	// that JetStream acknowledges.
	needKeyAck bool

	// repair is the keyframe published to repair the video, whose
	// acknowledgement the next delta waits for.
	repair atomic.Pointer[keyRepair]
	// lost is set when a video message of the current GOP was not
	// acknowledged; the next video frame breaks the video.
	lost atomic.Bool
	// gop counts the keyframes handed to NATS; inFlight maps each video
	// message awaiting its acknowledgement to the GOP it belongs to.
	gop      atomic.Uint64
	inFlight sync.Map // *nats.Msg -> uint64
}

// keyRepair is a keyframe published after JetStream lost video: the deltas
// of its GOP are published once it is acknowledged.
type keyRepair struct {
	msg  *nats.Msg
	done chan struct{} // closed when settled
	ok   bool          // acknowledged; set before done is closed
	once sync.Once
}

func (r *keyRepair) settle(ok bool) {
	r.once.Do(func() {
		r.ok = ok
		close(r.done)
	})
}

// reset forgets past losses (the video track changed).
func (g *videoGate) reset() { g.broken, g.needKeyAck = false, false }

// breakVideo makes deltas wait for a keyframe that JetStream acknowledges.
func (g *videoGate) breakVideo() {
	g.broken, g.needKeyAck = true, true
	g.repair.Store(nil)
}

// dropped records that a video frame was not published: deltas wait for
// the next keyframe.
func (g *videoGate) dropped() { g.broken = true }

// admit reports whether a video frame may be published. A delta after a
// loss first waits (until deadline or ctx's end) for the acknowledgement
// of the keyframe published to repair the video: acknowledged, its GOP goes
// on; refused, or not acknowledged in time, the video waits for the next
// keyframe.
func (g *videoGate) admit(ctx context.Context, key bool, deadline time.Time) bool {
	if g.lost.Swap(false) {
		g.breakVideo()
	}
	if !key && g.needKeyAck {
		g.awaitRepair(ctx, deadline)
	}
	return key || !g.broken
}

func (g *videoGate) awaitRepair(ctx context.Context, deadline time.Time) {
	r := g.repair.Load()
	if r == nil {
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-r.done:
		if r.ok {
			g.broken, g.needKeyAck = false, false
		}
	case <-t.C:
	case <-ctx.Done():
	}
	g.repair.Store(nil)
}

// begin starts a video frame whose first message is first and returns its
// GOP. A keyframe after a loss becomes the repair the next delta waits for
// (its acknowledgement may come before the publish returns).
func (g *videoGate) begin(key bool, first *nats.Msg) uint64 {
	if !key {
		return g.gop.Load()
	}
	gop := g.gop.Add(1)
	if g.needKeyAck {
		g.repair.Store(&keyRepair{msg: first, done: make(chan struct{})})
	}
	return gop
}

// track remembers the GOP of a video message until it is settled; untrack
// forgets it when the message could not be handed to NATS.
func (g *videoGate) track(m *nats.Msg, gop uint64) { g.inFlight.Store(m, gop) }
func (g *videoGate) untrack(m *nats.Msg)           { g.inFlight.Delete(m) }

// abort gives up the pending repair: a frame (of any kind) could not be
// handed to NATS, so the next delta waits for the next keyframe.
func (g *videoGate) abort() { g.repair.Store(nil) }

// published records a video frame handed to NATS in full: a keyframe
// repairs a video broken by a drop, unless a loss requires its
// acknowledgement.
func (g *videoGate) published(key bool) {
	if key && !g.needKeyAck {
		g.broken = false
	}
}

// acked records the acknowledgement of a message (of any kind).
func (g *videoGate) acked(m *nats.Msg) {
	g.inFlight.Delete(m)
	if r := g.repair.Load(); r != nil && r.msg == m {
		r.settle(true)
	}
}

// failed records a message (of any kind) that was not acknowledged. For a
// video message of the current GOP, the deltas that follow it would
// reference a frame that may be missing: the next video frame stored must
// be a keyframe. A message of an earlier GOP no longer matters.
func (g *videoGate) failed(m *nats.Msg) {
	if r := g.repair.Load(); r != nil && r.msg == m {
		r.settle(false)
	}
	if gop, ok := g.inFlight.LoadAndDelete(m); ok && gop.(uint64) == g.gop.Load() {
		g.lost.Store(true)
	}
}
