package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// hub is the media engine of one stream on this node: one bus subscription,
// each frame packetized once, fan-out of the shared packets to every viewer.
//
// Goroutines: run (set-up, catalog and subscription events) and the bus
// handler (owned by the subscription; it calls handle in stream order).
type hub struct {
	cfg    hubConfig
	name   string
	log    *slog.Logger
	cancel context.CancelFunc
	ready  chan struct{} // closed once the subscription is set up or failed
	// keyed is closed once the GOP cache has held a keyframe (guarded by
	// mu, with hasKey): a seek waits for it to replay at once.
	keyed  chan struct{}
	hasKey bool
	done   chan struct{} // closed when run has returned
	// setupErr is written before ready is closed.
	setupErr error
	wake     chan struct{} // a catalog change for run to look at
	refs     int           // viewers joined and not closed; guarded by Relay.mu
	// drained is closed when the log of a time-shifted hub has ended: its
	// viewers' writers write what their queues hold, then end (see
	// drainLocked). left tells run that one of them did.
	drained chan struct{}
	left    chan struct{}
	// clock is the base of the frames' receive times: time.Since(clock)
	// reads only the monotonic clock.
	clock time.Time

	// Owned by the bus handler.
	tl           timeline
	epoch        uint64
	epochKnown   bool
	videoStarted bool // a keyframe has been forwarded since the last reset
	gopIndex     int
	nextVideo    uint64
	nextAudio    uint64
	badFrames    uint64
	// group is the audio group being assembled (audio_group.go).
	group []*frame

	videoBuf *retransmitBuffer
	audioBuf *retransmitBuffer
	// smooth evens out a live stream that arrives in bursts (nil for a
	// time-shifted hub, which paces its own reading); smoothing (owned by
	// the bus handler) tells whether the current tracks need it.
	smooth    *smoother
	smoothing bool
	// smoothDone and smoothStopped end and follow the smoother's
	// goroutine, which the bus handler starts with the first frame the
	// smoother takes (nil before); smoothEnded: run has stopped it.
	smoothMu                  sync.Mutex
	smoothDone, smoothStopped chan struct{}
	smoothEnded               bool

	mu sync.Mutex
	// set is written by the bus handler under mu (so the handler reads it
	// without locking).
	set      trackSet
	setEpoch uint64
	cache    gopCache
	active   []*Viewer      // started viewers, in fan-out order
	cues     []tsframes.Cue // the stream's recent SCTE-35 cues (cue.go)
	members  map[*Viewer]struct{}
	catState string // latest catalog state seen ("" = none)
	ended    bool   // the catalog said ended and the grace expired
	// gone is why the hub no longer delivers (subscription failed or
	// lost, hub shut down); nil while it runs.
	gone error
}

// hubConfig is what a hub needs from its relay: settings, the bus, a
// logger and the relay's bookkeeping callbacks.
type hubConfig struct {
	start             StartMode
	endGrace          time.Duration
	retransmitPackets int
	// GOP cache limits (MaxGOPFrames, MaxGOPBytes; lowered by tests).
	maxGOPFrames, maxGOPBytes int
	// endDrain bounds how long the viewers of a time-shifted hub take to
	// write their queues at the end of the log (logEndDrain).
	endDrain time.Duration
	// shifted marks the private hub of a time-shifted viewer (see
	// Relay.JoinAt): its frames are not sampled for the delay histograms
	// (they are late on purpose), and its subscription ending with
	// ErrStreamEnded (the end of the log) ends its viewers with it once
	// they have written the frames in their queues (at most logEndDrain
	// later).
	shifted bool

	log       *slog.Logger
	subscribe subscribeFunc
	// subscribed is called with +1 once the hub's subscription is open
	// and with -1 once it is stopped.
	subscribed func(delta int)
	// lost is called when the hub stops delivering on its own (its
	// subscription failed or ended), so that the next Join gets a new hub.
	lost func(*hub)
	// keyframes asks the publisher for a keyframe (nil: never).
	keyframes *keyframeRequester
	// padAudio pads the packets of an audio group to one size (see
	// padGroup): Config.AudioGroupPadding.
	padAudio bool
	// videoCodec is the video codec the hub sends (H.264 or H.265; ""
	// picks H.264 when the stream has it, see trackSetFor); the stream's
	// frames of another video codec are left to another hub.
	videoCodec tsframes.Codec
}

// newHub returns the hub of the stream of ann; catState is the catalog's
// state of the stream when known ("" otherwise).
func newHub(cfg hubConfig, ann bus.Announcement, catState string) *hub {
	h := &hub{
		cfg:      cfg,
		name:     ann.Stream,
		log:      cfg.log.With("stream", ann.Stream),
		ready:    make(chan struct{}),
		keyed:    make(chan struct{}),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		drained:  make(chan struct{}),
		left:     make(chan struct{}, 1),
		clock:    time.Now(),
		videoBuf: newRetransmitBuffer(cfg.retransmitPackets),
		audioBuf: newRetransmitBuffer(cfg.retransmitPackets),
		set:      trackSetFor(ann, cfg.videoCodec),
		setEpoch: ann.Epoch,
		cache:    gopCache{maxFrames: cfg.maxGOPFrames, maxBytes: cfg.maxGOPBytes},
		members:  make(map[*Viewer]struct{}),
		catState: catState,
	}
	if !cfg.shifted {
		h.smooth = newSmoother(h.deliver)
		h.smoothing = needsSmoothing(ann)
		h.smooth.expectVideo = h.set.video
	}
	if catState == bus.StateEnded {
		h.wake <- struct{}{}
	}
	return h
}

// start runs the hub until close.
func (h *hub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go h.run(ctx)
}

// close stops the hub and waits for its goroutines (and the bus handler).
func (h *hub) close() {
	h.cancel()
	<-h.done
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	sub, err := h.cfg.subscribe(ctx, h.name, h.handle)
	if err != nil {
		h.setupErr = fmt.Errorf("relay: subscribe to %q: %w: %w", h.name, ErrSubscription, err)
		h.cfg.lost(h)
		h.mu.Lock()
		h.gone = h.setupErr
		h.mu.Unlock()
		close(h.ready)
		return
	}
	h.cfg.subscribed(1)
	defer h.cfg.subscribed(-1)
	defer h.stopSmoother() // after the subscription's handler has returned
	defer sub.Close()
	defer func() {
		// Shut down (last viewer closed, relay closed): a viewer that
		// joined meanwhile must not wait for frames that never come.
		h.mu.Lock()
		if h.gone == nil {
			h.gone = fmt.Errorf("relay: stream %q: %w", h.name, ErrClosed)
		}
		h.endAllLocked(h.gone)
		h.mu.Unlock()
	}()
	close(h.ready)
	h.log.Debug("subscribed")

	var grace *time.Timer
	var graceC <-chan time.Time
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			cause := sub.Err()
			if cause == nil {
				cause = bus.ErrClosed
			}
			h.cfg.lost(h) // the next Join gets a new hub
			h.mu.Lock()
			if h.cfg.shifted && errors.Is(cause, ErrStreamEnded) {
				// Every frame of the log has been handed out: the viewers
				// end once they have written their queues.
				h.log.Info("end of the stream's log reached", "viewers", len(h.members))
				h.gone = cause
				h.drainLocked()
				h.mu.Unlock()
				h.waitDrained(ctx)
				return // the deferred endAllLocked ends the viewers still writing
			}
			h.log.Warn("bus subscription ended", "error", cause)
			h.gone = fmt.Errorf("relay: stream %q: %w: %w", h.name, ErrSubscription, cause)
			h.endAllLocked(h.gone)
			h.mu.Unlock()
			return
		case <-h.wake:
			h.mu.Lock()
			state := h.catState
			if state == bus.StateLive {
				h.ended = false
			}
			h.mu.Unlock()
			gone := state == bus.StateEnded || state == bus.StateDeleted
			switch {
			case gone && grace == nil:
				h.log.Info("stream ended in catalog, closing viewers after grace", "grace", h.cfg.endGrace)
				grace = time.NewTimer(h.cfg.endGrace)
				graceC = grace.C
			case state == bus.StateLive && grace != nil:
				h.log.Info("stream live again within grace")
				grace.Stop()
				grace, graceC = nil, nil
			}
		case <-graceC:
			grace, graceC = nil, nil
			h.mu.Lock()
			h.ended = true
			n := len(h.members)
			h.endAllLocked(fmt.Errorf("relay: stream %q: %w", h.name, ErrStreamEnded))
			h.mu.Unlock()
			h.log.Info("stream ended, viewers closed", "viewers", n)
		}
	}
}

// admit makes v a member of the hub, unless the hub no longer delivers or
// the stream ended. live tells that the catalog view that made the caller
// join says the stream is live (the hub may not have seen it yet).
func (h *hub) admit(v *Viewer, live bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.admitLocked(v, live)
}

// admitLocked is admit with h.mu held.
func (h *hub) admitLocked(v *Viewer, live bool) error {
	if live {
		h.ended = false
	}
	switch {
	case h.gone != nil:
		return h.gone
	case h.ended:
		return fmt.Errorf("relay: join %q: %w", h.name, ErrStreamEnded)
	}
	h.members[v] = struct{}{}
	return nil
}

// end ends every viewer of the hub with err.
func (h *hub) end(err error) {
	h.mu.Lock()
	h.endAllLocked(err)
	h.mu.Unlock()
}

// catalog records a catalog entry of the stream for run.
func (h *hub) catalog(e bus.CatalogEntry) {
	h.mu.Lock()
	h.catState = e.State
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// handle is the bus handler: called in stream order from one goroutine.
func (h *hub) handle(m bus.Message) {
	// The start of the bus-to-RTP delay (see ViewerStats.BusToRTP).
	recv := time.Since(h.clock)
	if m.Tracks != nil || m.Cue != nil || m.Frame.Codec != tsframes.CodecOpus {
		// Not the rest of an audio group (whose last packet always
		// comes): what was assembled goes first.
		h.flushGroup()
	}
	epoch := m.Epoch
	if m.Tracks != nil {
		if epoch == 0 {
			epoch = m.Tracks.Epoch
		}
		set := trackSetFor(*m.Tracks, h.cfg.videoCodec)
		smoothing := needsSmoothing(*m.Tracks)
		if smoothing != h.smoothing || h.announcementChanges(epoch, set) {
			// The frames held precede the change. Not on the
			// announcement the ingest repeats before each keyframe:
			// releasing the held frames early each second made a gap
			// of the smoother's hold before every keyframe.
			h.flushSmoothed()
		}
		h.smoothing = smoothing
		h.announce(epoch, set)
		if h.smooth != nil {
			h.smooth.setExpectVideo(h.set.video)
		}
	}
	switch {
	case !h.epochKnown:
		h.epoch, h.epochKnown = epoch, true
	case epoch != h.epoch:
		h.flushSmoothed()
		h.log.Info("new epoch: timestamps rebased at its first keyframe", "epoch", epoch, "previous", h.epoch)
		h.epoch = epoch
		h.tl.newEpoch(h.set.video)
		h.newCueEpoch()
	}
	if m.Tracks != nil {
		return
	}
	if m.Cue != nil {
		h.onCue(*m.Cue)
		return
	}
	var f *frame
	switch fr := &m.Frame; fr.Codec {
	case tsframes.CodecH264, tsframes.CodecH265:
		f = h.onVideo(fr)
	case tsframes.CodecOpus:
		f = h.onAudio(fr)
	}
	if f == nil {
		if !m.Frame.More {
			// The group's last packet is not forwarded: the rest goes now.
			h.flushGroup()
		}
		return
	}
	f.recv = recv
	f.pts = m.Frame.PTS
	if !m.Published.IsZero() {
		// Wall clock: the base's plus the monotonic time since.
		f.ingest, f.hasIngest = h.clock.Add(recv).Sub(m.Published), true
		f.stored = m.Published.UnixNano()
	}
	if h.smooth == nil || !h.smoothing {
		if !f.video && (m.Frame.More || len(h.group) > 0) {
			h.group = append(h.group, f)
			if !m.Frame.More || len(h.group) == bus.MaxAudioGroup {
				h.flushGroup()
			}
			return
		}
		h.deliver(f)
		return
	}
	media := m.Frame.PTS
	if f.video && m.Frame.DTS != 0 {
		media = m.Frame.DTS // in decode order, as sent
	}
	h.startSmoother()
	h.smooth.push(f, media, f.stored, recv, h.clock.Add(recv).UnixNano())
}

// announcementChanges reports whether an announcement of epoch with the
// tracks set changes what the hub sends: a new epoch or other tracks (a
// repeated announcement does not). Called from the bus handler, the only
// goroutine that sets h.set.
func (h *hub) announcementChanges(epoch uint64, set trackSet) bool {
	if h.epochKnown && epoch != h.epoch {
		return true
	}
	return !set.sameAs(h.set) || !h.set.sameAs(set)
}

// startSmoother starts the smoother's goroutine, once: with the first frame
// it takes, since most streams never need it.
func (h *hub) startSmoother() {
	h.smoothMu.Lock()
	defer h.smoothMu.Unlock()
	if h.smoothStopped != nil || h.smoothEnded {
		return
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	h.smoothDone, h.smoothStopped = done, stopped
	go func() {
		defer close(stopped)
		h.smooth.run(done, h.clock)
	}()
}

// stopSmoother stops the smoother's goroutine, if it was started, and
// waits for it.
func (h *hub) stopSmoother() {
	h.smoothMu.Lock()
	h.smoothEnded = true
	done, stopped := h.smoothDone, h.smoothStopped
	h.smoothMu.Unlock()
	if stopped != nil {
		close(done)
		<-stopped
	}
}

// needsSmoothing reports whether the frames of a stream with the tracks of
// ann arrive in bursts: its audio is derived by a transcoding stage, which
// publishes the Opus of each source PES (up to half a second of AAC, MP2 or
// AC-3) at once. Other sources send audio finely enough (Opus in MPEG-TS:
// PES of at most 120 ms, which the ingest interleaves with the video; RTMP
// and WHIP: frame by frame), and their frames go out as they come.
func needsSmoothing(ann bus.Announcement) bool {
	t, ok := ann.Track(ann.Audio)
	return ok && t.DerivedFrom != 0
}

// flushSmoothed delivers the frames the smoother holds.
func (h *hub) flushSmoothed() {
	if h.smooth != nil {
		h.smooth.flush()
	}
}

// deliver keeps f for retransmissions and publishes it to the viewers.
func (h *hub) deliver(f *frame) {
	if f.video {
		h.videoBuf.put(f)
	} else {
		h.audioBuf.put(f)
	}
	h.publish(f)
}

// announce applies an announcement of epoch with the tracks set: the same
// track set keeps the viewers, another one ends those that negotiated the
// old one.
func (h *hub) announce(epoch uint64, set trackSet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.setEpoch = epoch
	if set.sameAs(h.set) {
		h.set.learn(set)
		return
	}
	if h.set.sameAs(set) {
		// Every viewer plays what the stream now sends (its H.264 is
		// constrained baseline): the next ones negotiate that, the
		// current ones go on without waiting for a keyframe.
		h.log.Info("tracks profile changed", "epoch", epoch, "from", h.set.String(), "to", set.String())
		h.set = set
		return
	}
	h.log.Info("tracks changed", "epoch", epoch, "from", h.set.String(), "to", set.String())
	h.set = set
	h.cache.reset()
	h.videoStarted = false
	for v := range h.members {
		if v.set.sameAs(set) {
			if v.waitSet {
				v.waitSet = false
				v.needKey = true
			}
			continue
		}
		h.removeLocked(v, fmt.Errorf("relay: stream %q: %w: negotiated %s, now %s", h.name, ErrTracksChanged, v.set, set))
	}
}

// onVideo packetizes a video frame; nil when it is not forwarded.
func (h *hub) onVideo(fr *tsframes.Frame) *frame {
	if !h.set.video || fr.Codec != h.set.codec || (!h.videoStarted && !fr.Key) {
		return nil
	}
	payloads, _, err := packetizeVideo(fr.Codec, fr.Data, MaxPayload)
	if err != nil || len(payloads) == 0 {
		h.badFrames++
		if h.badFrames == 1 || h.badFrames%100 == 0 {
			h.log.Warn("video frame skipped, waiting for the next keyframe", "epoch", h.epoch, "error", err, "skipped", h.badFrames)
		}
		h.videoStarted = false
		return nil
	}
	ts, ok := h.tl.video(fr.PTS, fr.Key)
	if !ok {
		return nil
	}
	h.videoStarted = true
	if fr.Key {
		h.gopIndex = 0
	} else {
		h.gopIndex++
	}
	f := newFrame(true, fr.Key, ts, h.gopIndex, h.nextVideo, payloads, true)
	f.sampled = h.gopIndex%delaySampleEvery == 0 && !h.cfg.shifted
	h.nextVideo += uint64(len(payloads))
	return f
}

// onAudio packetizes an audio frame; nil when it is not forwarded.
func (h *hub) onAudio(fr *tsframes.Frame) *frame {
	if !h.set.audio || len(fr.Data) == 0 {
		return nil
	}
	ts, ok := h.tl.audio(fr.PTS, fr.Duration)
	if !ok {
		return nil
	}
	f := newFrame(false, false, ts, 0, h.nextAudio, [][]byte{fr.Data}, false)
	f.sampled = h.nextAudio%delaySampleEvery == 0 && !h.cfg.shifted
	h.nextAudio++
	return f
}

// publish caches f and queues it for every active viewer.
func (h *hub) publish(f *frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.video {
		h.cache.add(f)
		if f.key && !h.hasKey {
			h.hasKey = true
			close(h.keyed)
		}
	}
	for _, v := range h.active {
		v.offerLocked(f)
	}
}

// startLocked makes v active and returns the GOP it starts with (nil: wait
// for the next keyframe). The caller holds h.mu.
func (h *hub) startLocked(v *Viewer) []*frame {
	if !v.set.sameAs(h.set) {
		if v.epoch <= h.setEpoch {
			h.removeLocked(v, fmt.Errorf("relay: stream %q: %w: negotiated %s, now %s", h.name, ErrTracksChanged, v.set, h.set))
			return nil
		}
		// The viewer saw a newer announcement than the hub: wait for it.
		v.waitSet = true
	}
	v.active = true
	h.active = append(h.active, v)
	if v.video == nil || v.waitSet {
		return nil
	}
	if h.cfg.start == StartGOP {
		if gop := h.cache.frames(); gop != nil {
			return gop
		}
	}
	v.needKey = true
	h.askKeyframe()
	return nil
}

// removeLocked takes v out of the hub and ends it with err. The caller holds
// h.mu.
func (h *hub) removeLocked(v *Viewer, err error) {
	h.detachLocked(v)
	v.finishLocked(err)
}

// detachLocked takes v out of the hub without ending it (a seek moves it
// to another hub). The caller holds h.mu.
func (h *hub) detachLocked(v *Viewer) {
	if _, ok := h.members[v]; ok && h.gone != nil {
		select {
		case h.left <- struct{}{}: // for waitDrained
		default:
		}
	}
	delete(h.members, v)
	if v.active {
		v.active = false
		for i, a := range h.active {
			if a == v {
				last := len(h.active) - 1
				h.active[i] = h.active[last]
				h.active[last] = nil
				h.active = h.active[:last]
				break
			}
		}
	}
}

// drainLocked closes drained once h.gone is set: the viewers whose writer
// goroutine runs write the frames in their queues and then end with h.gone
// (see Viewer.drainAndEnd); the others end now. The caller holds h.mu.
func (h *hub) drainLocked() {
	close(h.drained)
	for v := range h.members {
		if !v.started || v.ended {
			h.removeLocked(v, h.gone)
		}
	}
}

// waitDrained waits until every member of a drained hub has ended, at most
// cfg.endDrain (or until ctx ends): a viewer slow to write its queue, or
// whose peer is gone, is then ended by the caller with what it has not
// written.
func (h *hub) waitDrained(ctx context.Context) {
	deadline := time.NewTimer(h.cfg.endDrain)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		n := len(h.members)
		h.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-h.left:
		case <-deadline.C:
			h.log.Warn("time-shifted viewers still writing at the end of the log, ended", "viewers", n, "after", h.cfg.endDrain)
			return
		case <-ctx.Done():
			return
		}
	}
}

// endAllLocked ends every viewer with err. The caller holds h.mu.
func (h *hub) endAllLocked(err error) {
	for v := range h.members {
		v.active = false
		v.finishLocked(err)
		delete(h.members, v)
	}
	clear(h.active)
	h.active = h.active[:0]
}
