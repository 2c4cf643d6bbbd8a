package relay

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
)

// nackQueue bounds the NACK requests waiting for a viewer's writer.
const nackQueue = 32

// nackRequest is a NACK for one of the viewer's tracks.
type nackRequest struct {
	video bool
	pairs []rtcp.NackPair
}

// Batcher groups the datagrams of one write into fewer system calls (see
// pkg/udpbatch): Begin opens a batch for the viewer's current path and
// reports whether it did; Flush sends what the batch collected. Both are
// called by the viewer's writer goroutine only.
type Batcher interface {
	Begin() bool
	Flush()
}

// Viewer is one receiver of a stream on this node: its tracks are bound to
// one PeerConnection, and its writer goroutine sends the stream's shared
// packets to them. Create it with Relay.Join, call Start when the
// PeerConnection is connected, and Close when done.
type Viewer struct {
	// hub is the hub the viewer is a member of: the stream's shared one, or
	// the private one of a time-shifted viewer. Seek changes it, under
	// moveMu; Start and Close read it under moveMu.
	hub    *hub
	moveMu sync.Mutex
	// acquire, release and left are the relay's: a hub for a seek, the
	// release of a hub left, and the viewer's end (called once, by Close).
	acquire func(ctx context.Context, ann bus.Announcement, at time.Time) (*hub, error)
	release func(*hub)
	left    func()
	ann     bus.Announcement // the announcement the viewer joined with
	// shifted tells that the viewer plays the log (JoinAt, Seek to a time),
	// not the live feed.
	shifted atomic.Bool
	// pos is the position of the last frame written: its PTS and store
	// time (Unix ns), see Position.
	posPTS, posStored atomic.Int64
	stream            string
	log               *slog.Logger
	set               trackSet // the tracks negotiated (from the announcement at Join)
	epoch             uint64   // the epoch of that announcement

	video, audio *trackWriter // nil when not sent
	// delays are written by the writer goroutine for the sampled live
	// frames.
	delays *viewerDelays

	queue chan *frame
	nacks chan nackRequest
	cues  cueQueue // SCTE-35 cues waiting for their frame (cue.go)
	batch Batcher  // nil: every packet is its own write

	// Guarded by hub.mu: the hub-side state of the viewer.
	started  bool
	active   bool // in hub.active, receiving the live feed
	waitSet  bool // waits for the hub to reach the viewer's track set
	needKey  bool // skips video until the next keyframe
	overflow bool // needKey because the queue overflowed: skips are drops
	ended    bool // finish was called

	// replayRate is Config.ReplayRate: the pace of the replay.
	replayRate float64

	quit     chan struct{} // closed by finish (and by Seek): the writer exits
	done     chan struct{} // closed by finish
	err      error         // set before done is closed
	wg       sync.WaitGroup
	closing  sync.Once
	startAt  time.Time
	ttff     atomic.Int64 // ns
	rtt      atomic.Int64 // ns
	replayed atomic.Int64
	caughtUp atomic.Int64 // ns
}

// VideoTrack returns the viewer's video track to add to its PeerConnection,
// or nil when video was not wanted or the stream has no H.264.
func (v *Viewer) VideoTrack() webrtc.TrackLocal {
	if v.video == nil {
		return nil
	}
	return v.video.t
}

// AudioTrack returns the viewer's audio track to add to its PeerConnection,
// or nil when audio was not wanted or the stream has no Opus.
func (v *Viewer) AudioTrack() webrtc.TrackLocal {
	if v.audio == nil {
		return nil
	}
	return v.audio.t
}

// SetBatcher makes the writer send each multi-packet frame, and each NACK's
// retransmissions, as one batch of b. Call it before Start.
func (v *Viewer) SetBatcher(b Batcher) { v.batch = b }

// Start starts sending: call it once the PeerConnection is connected (DTLS
// done); nothing is written before. With StartGOP the viewer first gets the
// stream's GOP since its latest keyframe (the keyframe at once, the rest
// paced at Config.ReplayRate, see trackWriter.setReplay for its timestamps),
// then the live feed; with StartLive, or when no keyframe is cached, video
// starts at the next keyframe. Audio starts at the live edge. Calling Start
// again, or after the viewer ended, does nothing.
func (v *Viewer) Start() {
	v.moveMu.Lock()
	defer v.moveMu.Unlock()
	h := v.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.started || v.ended {
		return
	}
	v.started = true
	v.startAt = time.Now()
	v.beginLocked(h)
}

// beginLocked makes the started viewer active in h and starts its writer
// goroutine, with the GOP it replays first. The caller holds h.mu.
func (v *Viewer) beginLocked(h *hub) {
	replay := h.startLocked(v)
	if v.ended {
		return
	}
	if len(replay) > 0 {
		v.video.setReplay(replay, v.replayRate, keyGapTicks(replay[0].bytes, h.cache.rate, v.replayRate))
		v.replayed.Store(int64(len(replay)))
	}
	v.cues.reset(h.cues)
	v.log.Debug("viewer started", "replay_frames", len(replay), "wait_keyframe", v.needKey, "wait_tracks", v.waitSet,
		"time_shifted", h.cfg.shifted)
	v.wg.Add(1)
	go v.run(h, replay)
}

// Done is closed when the viewer has ended: the relay ended it (Err tells
// why) or it was closed.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Err returns why the viewer ended: an error wrapping ErrStreamEnded,
// ErrTracksChanged, ErrSubscription or ErrClosed; nil while Done is open.
func (v *Viewer) Err() error {
	select {
	case <-v.done:
		return v.err
	default:
		return nil
	}
}

// Stats returns the viewer's counters.
func (v *Viewer) Stats() ViewerStats {
	s := ViewerStats{
		Stream:           v.stream,
		RTT:              time.Duration(v.rtt.Load()),
		TimeToFirstFrame: time.Duration(v.ttff.Load()),
		Replayed:         int(v.replayed.Load()),
		CatchUp:          time.Duration(v.caughtUp.Load()),
		BusToRTP:         v.delays.busToRTP.snapshot(),
		IngestToRTP:      v.delays.ingestToRTP.snapshot(),
	}
	if v.video != nil {
		s.Video = v.video.stats()
	}
	if v.audio != nil {
		s.Audio = v.audio.stats()
	}
	return s
}

// Close ends the viewer: it leaves the stream, waits for its writer
// goroutine and releases the stream's hub when it was the last viewer. It is
// idempotent. Goroutines started by BindSenders end when their senders stop
// (the PeerConnection is closed).
func (v *Viewer) Close() {
	v.closing.Do(func() {
		v.moveMu.Lock()
		defer v.moveMu.Unlock()
		h := v.hub
		h.mu.Lock()
		h.removeLocked(v, ErrClosed)
		h.mu.Unlock()
		v.wg.Wait()
		v.release(h)
		v.left()
	})
}

// finish ends the viewer with err; the caller holds hub.mu.
func (v *Viewer) finishLocked(err error) {
	if v.ended {
		return
	}
	v.ended = true
	v.err = err
	close(v.quit)
	close(v.done)
	v.log.Debug("viewer ended", "reason", err)
}

// offerLocked queues f for the viewer, never blocking: a full queue drops
// the frame, and for video every frame up to the next keyframe. The caller
// holds hub.mu.
func (v *Viewer) offerLocked(f *frame) {
	w := v.audio
	if f.video {
		w = v.video
	}
	if w == nil || v.waitSet {
		return
	}
	if f.video && v.needKey && !f.key {
		if v.overflow {
			w.drops.Add(1)
		}
		return
	}
	select {
	case v.queue <- f:
		if f.video {
			v.needKey, v.overflow = false, false
		}
	default:
		w.drops.Add(uint64(f.count()))
		if f.video {
			v.needKey, v.overflow = true, true
		}
	}
}

// run is the viewer's writer goroutine for hub h: the replay and the live
// frames that arrive during it (paced, see replayPacer), then the live
// queue, and the NACKs, until the viewer ends, or until h's log has ended
// (h.drained) and the queue is written.
func (v *Viewer) run(h *hub, replay []*frame) {
	defer v.wg.Done()
	if len(replay) > 0 && !v.catchUp(replay) {
		return
	}
	for {
		select {
		case <-v.quit:
			return
		case n := <-v.nacks:
			v.retransmit(n)
		case f := <-v.queue:
			v.writeLive(f)
		case <-h.drained:
			v.drainAndEnd(h)
			return
		}
	}
}

// drainAndEnd writes the frames left in the queue once h's log has ended
// (no frame is queued any more), then ends the viewer with h.gone: Done is
// closed only after the last frame read from the log was written. A seek
// or Close meanwhile (quit) stops it; the hub ends a viewer that takes
// longer than logEndDrain.
func (v *Viewer) drainAndEnd(h *hub) {
	// The writer is the queue's only reader, and nothing is queued after
	// drained is closed.
	for len(v.queue) > 0 {
		select {
		case <-v.quit:
			return
		default:
		}
		v.writeLive(<-v.queue)
	}
	h.mu.Lock()
	if _, ok := h.members[v]; ok { // not moved by a seek meanwhile
		h.removeLocked(v, h.gone)
	}
	h.mu.Unlock()
}

// catchUp sends the replay (keyframe first) and the live video frames that
// arrive meanwhile at the replay's pace, audio and NACKs as they come, until
// the backlog is empty: the viewer has then reached the live edge. It
// returns false when the viewer ended.
//
// Live video frames wait in the backlog, not in the viewer's queue, so that
// the queue does not overflow during a long replay. The backlog holds at
// most len(replay) + cap(queue) frames; a live video frame beyond is dropped
// like one that finds the queue full, and so is every one after it up to
// the next keyframe.
func (v *Viewer) catchUp(replay []*frame) bool {
	pace := newReplayPacer(replay[0], v.replayRate, v.video.replayGap, time.Now())
	// backlog never grows in place: replay is the hub's GOP cache (its
	// capacity is its length, see gopCache.frames).
	backlog, replayed := replay, 0 // replayed: frames of replay written
	limit := len(replay) + cap(v.queue)
	skip := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(backlog) > 0 {
		f := backlog[0]
		wait := time.Until(pace.at(f))
		if wait <= 0 {
			select {
			case <-v.quit:
				return false
			default:
			}
			backlog = backlog[1:]
			// Not a live frame for the delay histograms: it waited for
			// its turn in the backlog on purpose.
			if replayed < len(replay) {
				replayed++
			} else {
				v.video.extendReplay(f)
			}
			v.writeFrame(f)
			if len(backlog) == 0 {
				v.video.endReplay(f)
				v.caughtUp.Store(int64(max(time.Since(v.startAt), 1)))
			}
			continue
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-v.quit:
			return false
		case n := <-v.nacks:
			v.retransmit(n)
		case lf := <-v.queue:
			switch {
			case !lf.video:
				v.writeLive(lf)
			case skip && !lf.key, len(backlog) >= limit:
				v.video.drops.Add(1)
				skip = true
			default:
				skip = false
				backlog = append(backlog, lf)
			}
		case <-timer.C:
		}
	}
	return true
}

// writeLive writes a frame of the live feed (with the rest of its audio
// group) and records the delays of those sampled.
func (v *Viewer) writeLive(f *frame) {
	if !v.writeFrame(f) {
		return
	}
	for ; f != nil; f = f.next {
		if f.sampled {
			v.observeDelay(f)
		}
	}
}

// writeFrame writes f, and the frames of its audio group after it, in one
// batch; it returns false when the track is not bound.
func (v *Viewer) writeFrame(f *frame) bool {
	w := v.audio
	if f.video {
		w = v.video
	}
	batched := v.batch != nil && (len(f.pkts) > 1 || f.next != nil) && v.batch.Begin()
	ok := w.write(f)
	for ok && f.next != nil {
		f = f.next
		ok = w.write(f)
	}
	if batched {
		v.batch.Flush()
	}
	if !ok {
		return false
	}
	if f.video || v.video == nil {
		v.posPTS.Store(f.pts)
		v.posStored.Store(f.stored)
		v.cues.wrote(f.pts)
	}
	if v.ttff.Load() == 0 && (f.key || (!f.video && v.video == nil)) {
		v.ttff.Store(int64(max(time.Since(v.startAt), 1)))
	}
	return true
}

// observeDelay records the delays of a live frame just written: from its
// arrival from the bus, and from its store time in JetStream. An ingest
// delay below zero (the NATS server's clock ahead of this node's) is not
// recorded.
func (v *Viewer) observeDelay(f *frame) {
	d := time.Since(v.hub.clock) - f.recv
	v.delays.busToRTP.observe(d)
	if f.hasIngest {
		if in := f.ingest + d; in >= 0 {
			v.delays.ingestToRTP.observe(in)
		}
	}
}

// retransmit answers a NACK from the stream's shared buffer.
func (v *Viewer) retransmit(n nackRequest) {
	w := v.audio
	if n.video {
		w = v.video
	}
	if w == nil {
		return
	}
	if v.batch != nil && v.batch.Begin() {
		defer v.batch.Flush()
	}
	now := time.Since(v.hub.clock).Nanoseconds()
	gap := max(minResendGap, time.Duration(v.rtt.Load()))
	for _, p := range n.pairs {
		w.retransmit(p.PacketID, now, gap)
		for i := uint16(0); i < 16; i++ {
			if p.LostPackets&(1<<i) != 0 {
				w.retransmit(p.PacketID+i+1, now, gap)
			}
		}
	}
}
