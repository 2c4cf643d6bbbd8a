// Package relay is the media engine of a whep-node: it turns the frames of
// a stream on the bus into RTP for every viewer of that stream on this node.
// Per stream, node and video codec sent there is one bus subscription; each
// frame is packetized once (H.264 packetization-mode 1, H.265 per RFC 7798,
// Opus) and the shared packets are fanned out to every viewer, rewriting
// only their RTP headers, without copy or allocation per viewer. A viewer
// gets H.264 or H.265 video (Want.VideoCodec): an H.265 source as it is, or
// the H.264 rendition a transcoding stage derived from it. Relay owns its
// defaults and validates its Config (New); the caller only maps its
// settings onto it.
//
// A viewer (Relay.Join, then Viewer.Start once its PeerConnection is
// connected) gets its RTP sequence numbers without gap, duplicate or
// reordering and never a video frame without its keyframe. With StartGOP it
// starts from the stream's latest keyframe at once: the cached GOP is
// replayed (keyframe at once, the rest paced at Config.ReplayRate times the
// stream's bitrate, timestamps from the live edge on advancing with the
// sending: a fast-forward that adds no latency) and handed over to the live
// feed; with StartLive its video starts at the next keyframe. A slow
// viewer drops frames up to the next keyframe (bounded queue) and never slows
// the others; NACKs are answered from a buffer shared by the stream's
// viewers, on the RTX stream (RFC 4588) when the viewer negotiated one. A
// new epoch with the same tracks keeps the viewers; changed tracks end them
// (ErrTracksChanged), and so does a stream the catalog reports
// ended (ErrStreamEnded after Config.EndGrace). Viewer.Close and Relay.Close
// stop at once; every goroutine of a stream ends with its last viewer.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Limits and defaults.
const (
	// MaxPayload is the largest RTP payload sent, in bytes: it leaves room
	// for the RTP, SRTP, UDP and IP headers within common path MTUs.
	MaxPayload = 1200
	// MaxGOPFrames and MaxGOPBytes bound the cached GOP of a stream; a
	// longer GOP is not replayed (viewers wait for the next keyframe).
	MaxGOPFrames = 1200
	MaxGOPBytes  = 32 << 20
	// MaxRetransmitPackets bounds Config.RetransmitPackets: RTP sequence
	// numbers are 16 bits, so a NACK cannot name an older packet anyway.
	MaxRetransmitPackets = 1 << 15

	// MaxReplayRate bounds Config.ReplayRate.
	MaxReplayRate = 1000

	DefaultViewerQueue       = 256
	DefaultReplayRate        = 4
	DefaultRetransmitPackets = 4096
	DefaultEndGrace          = 5 * time.Second
)

// StartMode is where a new viewer starts (Config.Start).
type StartMode string

// Start modes.
const (
	// StartGOP starts a viewer from the stream's latest keyframe at once.
	StartGOP StartMode = "gop"
	// StartLive starts a viewer's video at the next keyframe.
	StartLive StartMode = "live"
)

// ParseStartMode returns the start mode named s ("gop" or "live"), or an
// error wrapping ErrInvalidConfig.
func ParseStartMode(s string) (StartMode, error) {
	switch m := StartMode(s); m {
	case StartGOP, StartLive:
		return m, nil
	}
	return "", fmt.Errorf("relay: %w: start mode %q (want %q or %q)", ErrInvalidConfig, s, StartGOP, StartLive)
}

// Config configures a Relay. Zero values take the defaults.
type Config struct {
	// Conn is the NATS connection the bus subscriptions use. Required.
	Conn *nats.Conn
	// Catalog, when set, tells stream ends: a stream whose entry is ended
	// or removed has its viewers ended after EndGrace, unless it is live
	// again by then.
	Catalog *bus.Watcher
	// Logger receives the relay's logs (default: discarded).
	Logger *slog.Logger
	// Start is StartGOP (default) or StartLive.
	Start StartMode
	// ReplayRate is the pace of the GOP replayed to a new viewer, as a
	// multiple of the stream's bitrate (of real time): the keyframe is sent
	// at once, the rest of the GOP and the live video that arrives meanwhile
	// at ReplayRate times real time, so that a viewer reaches the live edge
	// after the replayed duration / (ReplayRate - 1). Default 4, more than
	// 1, at most MaxReplayRate.
	ReplayRate float64
	// ViewerQueue is each viewer's queue, in frames (default 256).
	ViewerQueue int
	// RetransmitPackets is the per-stream, per-track NACK buffer, in packets
	// (default 4096, at most MaxRetransmitPackets; rounded up to a power of
	// two).
	RetransmitPackets int
	// EndGrace is how long a stream the catalog says ended keeps its viewers
	// (default 5 s).
	EndGrace time.Duration
	// AudioGroupPadding pads the Opus packets that arrive together (one
	// bus message) to one size with RTP padding, so that a viewer's
	// Batcher sends them in one GSO send (see audio_group.go). It costs
	// the padding bytes (a few percent of the audio) and pays only with a
	// Batcher that uses GSO.
	AudioGroupPadding bool
}

// subscription is what a hub needs of a bus subscription.
type subscription interface {
	Close()
	Done() <-chan struct{}
	Err() error
}

// subscribeFunc opens the subscription of a hub: handler is called in
// stream order from one goroutine, from the stream's latest keyframe.
type subscribeFunc func(ctx context.Context, name string, handler func(bus.Message)) (subscription, error)

// subscribeAtFunc opens the log reader of a time-shifted viewer: handler is
// called in stream order, paced in real time, from the keyframe at or
// before at (see subscribeLog).
type subscribeAtFunc func(ctx context.Context, name string, at time.Time, handler func(bus.Message)) (subscription, error)

// catalogSource is what the relay needs of the catalog (a *bus.Watcher).
type catalogSource interface {
	Get(name string) (bus.CatalogEntry, bool)
	Subscribe() (<-chan bus.CatalogEntry, func())
}

// Relay owns the hubs of the streams played on this node.
type Relay struct {
	cfg       Config
	log       *slog.Logger
	subscribe subscribeFunc
	catalog   catalogSource // nil: stream ends are not watched

	// subscribeAt opens the log reader of a time-shifted viewer (nil:
	// JoinAt fails).
	subscribeAt subscribeAtFunc

	mu sync.Mutex
	// hubs are the streams' shared hubs, one per video codec sent.
	hubs map[hubKey]*hub
	// private are the hubs of time-shifted viewers, one each.
	private map[*hub]struct{}
	closed  bool

	subs    atomic.Int64
	viewers atomic.Int64

	// GOP cache limits (MaxGOPFrames, MaxGOPBytes; lowered by tests).
	maxGOPFrames, maxGOPBytes int
	// endDrain is logEndDrain (lowered by tests).
	endDrain time.Duration

	catalogStop func()
	catalogDone chan struct{}

	keyframes *keyframeRequester // nil: no keyframe requests (tests)
}

// New returns a Relay. It returns an error wrapping ErrInvalidConfig when
// Conn is nil or a field is out of range.
func New(cfg Config) (*Relay, error) {
	if cfg.Conn == nil {
		return nil, fmt.Errorf("relay: %w: Conn is nil", ErrInvalidConfig)
	}
	conn := cfg.Conn
	var catalog catalogSource
	if cfg.Catalog != nil {
		catalog = cfg.Catalog
	}
	r, err := newRelay(cfg, func(ctx context.Context, name string, handler func(bus.Message)) (subscription, error) {
		return subscribeBus(ctx, conn, name, handler, cfg.Logger)
	}, catalog)
	if err != nil {
		return nil, err
	}
	r.subscribeAt = func(ctx context.Context, name string, at time.Time, handler func(bus.Message)) (subscription, error) {
		return subscribeLog(ctx, logConfig{conn: conn, catalog: catalog, logger: r.log, endIdle: r.cfg.EndGrace}, name, at, handler)
	}
	r.keyframes = newKeyframeRequester(conn, r.log)
	return r, nil
}

// newRelay is New with the bus subscription replaced (tests, benchmarks).
func newRelay(cfg Config, subscribe subscribeFunc, catalog catalogSource) (*Relay, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:       cfg,
		log:       cfg.Logger,
		subscribe: subscribe,
		catalog:   catalog,
		hubs:      make(map[hubKey]*hub),
		private:   make(map[*hub]struct{}),

		maxGOPFrames: MaxGOPFrames,
		maxGOPBytes:  MaxGOPBytes,
		endDrain:     logEndDrain,
	}
	if catalog != nil {
		ch, cancel := catalog.Subscribe()
		r.catalogStop = cancel
		r.catalogDone = make(chan struct{})
		go r.watchCatalog(ch)
	}
	return r, nil
}

func (c *Config) applyDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch c.Start {
	case "":
		c.Start = StartGOP
	case StartGOP, StartLive:
	default:
		return fmt.Errorf("relay: %w: Start %q (want %q or %q)", ErrInvalidConfig, c.Start, StartGOP, StartLive)
	}
	switch {
	case c.ReplayRate == 0:
		c.ReplayRate = DefaultReplayRate
	case !(c.ReplayRate > 1 && c.ReplayRate <= MaxReplayRate): // NaN too
		return fmt.Errorf("relay: %w: ReplayRate %g (want more than 1, at most %d)", ErrInvalidConfig, c.ReplayRate, MaxReplayRate)
	}
	switch {
	case c.ViewerQueue < 0:
		return fmt.Errorf("relay: %w: ViewerQueue %d", ErrInvalidConfig, c.ViewerQueue)
	case c.ViewerQueue == 0:
		c.ViewerQueue = DefaultViewerQueue
	}
	switch {
	case c.RetransmitPackets < 0 || c.RetransmitPackets > MaxRetransmitPackets:
		return fmt.Errorf("relay: %w: RetransmitPackets %d (max %d)", ErrInvalidConfig, c.RetransmitPackets, MaxRetransmitPackets)
	case c.RetransmitPackets == 0:
		c.RetransmitPackets = DefaultRetransmitPackets
	}
	switch {
	case c.EndGrace < 0:
		return fmt.Errorf("relay: %w: EndGrace %s", ErrInvalidConfig, c.EndGrace)
	case c.EndGrace == 0:
		c.EndGrace = DefaultEndGrace
	}
	return nil
}

// Want selects the kinds a viewer receives.
type Want struct {
	Video, Audio bool
	// VideoCodec is the video codec the viewer receives: tsframes.CodecH264
	// or tsframes.CodecH265 (an H.265 stream's source, or the H.265 track
	// an H.264 rendition is derived from). "" is H.264 when the stream has
	// it, else H.265.
	VideoCodec tsframes.Codec
}

// hubKey names a shared hub: a stream and the video codec it sends. A
// stream whose viewers take both H.264 and H.265 has two hubs on a node,
// each with its own subscription.
type hubKey struct {
	name  string
	codec tsframes.Codec
}

// keyOf is the key of h when it is shared.
func keyOf(h *hub) hubKey { return hubKey{h.name, h.cfg.videoCodec} }

// Join adds a viewer of ann.Stream, where ann is the catalog's current
// announcement of the stream; the viewer's tracks are those of ann it wants.
// The first viewer of a stream on this node creates the stream's hub and its
// bus subscription (Join waits for it, bounded by ctx); the last Close
// releases it. Join returns an error wrapping bus.ErrInvalidName,
// ErrNoTracks, ErrClosed, ErrStreamEnded, ErrSubscription or ctx's error.
func (r *Relay) Join(ctx context.Context, ann bus.Announcement, want Want) (*Viewer, error) {
	return r.join(ctx, ann, want, time.Time{})
}

func (r *Relay) join(ctx context.Context, ann bus.Announcement, want Want, at time.Time) (*Viewer, error) {
	if err := bus.ValidateName(ann.Stream); err != nil {
		return nil, fmt.Errorf("relay: join: %w", err)
	}
	set := trackSetFor(ann, want.VideoCodec)
	if !want.Video || !set.video {
		// An audio-only viewer shares the hub of the stream's default
		// video codec.
		set = trackSetOf(ann)
	}
	wantVideo, wantAudio := want.Video && set.video, want.Audio && set.audio
	if !wantVideo && !wantAudio {
		return nil, fmt.Errorf("relay: join %q (stream sends %s, viewer wants %+v): %w", ann.Stream, set, want, ErrNoTracks)
	}
	acquire := func(ctx context.Context, ann bus.Announcement, at time.Time) (*hub, error) {
		return r.acquire(ctx, ann, at, set.codec)
	}
	h, err := acquire(ctx, ann, at)
	if err != nil {
		return nil, err
	}

	v := &Viewer{
		hub:    h,
		ann:    ann,
		stream: ann.Stream,
		log:    h.log.With("epoch", ann.Epoch),
		set:    set,
		epoch:  ann.Epoch,
		queue:  make(chan *frame, r.cfg.ViewerQueue),
		nacks:  make(chan nackRequest, nackQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		delays: new(viewerDelays),

		replayRate: r.cfg.ReplayRate,
		acquire:    acquire,
		release:    r.release,
		left:       func() { r.viewers.Add(-1) },
	}
	v.shifted.Store(!at.IsZero())
	if wantVideo {
		t := newTrack(webrtc.RTPCodecTypeVideo, videoCapability(set), ann.Stream)
		v.video = newTrackWriter(t, h.videoBuf, videoClockRate)
	}
	if wantAudio {
		t := newTrack(webrtc.RTPCodecTypeAudio, opusCapability(), ann.Stream)
		v.audio = newTrackWriter(t, h.audioBuf, audioClockRate)
	}

	live := false
	if r.catalog != nil && at.IsZero() {
		e, ok := r.catalog.Get(ann.Stream)
		live = ok && e.State == bus.StateLive
	}
	if err := h.admit(v, live); err != nil {
		r.release(h)
		return nil, err
	}
	r.viewers.Add(1)
	return v, nil
}

// acquire returns a hub of ann.Stream with one more reference, once its
// subscription is set up (bounded by ctx): the stream's shared hub when at
// is zero (created by its first viewer), otherwise a new private hub that
// reads the stream's log from at (see JoinAt). The hub sends video of codec
// (see hubConfig.videoCodec).
func (r *Relay) acquire(ctx context.Context, ann bus.Announcement, at time.Time, codec tsframes.Codec) (*hub, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("relay: join %q: %w", ann.Stream, ErrClosed)
	}
	var h *hub
	if at.IsZero() {
		key := hubKey{ann.Stream, codec}
		h = r.hubs[key]
		if h == nil {
			var catState string
			if r.catalog != nil {
				if e, ok := r.catalog.Get(ann.Stream); ok {
					catState = e.State
				}
			}
			cfg := r.hubConfig()
			cfg.videoCodec = codec
			h = newHub(cfg, ann, catState)
			r.hubs[key] = h
			h.start()
		}
	} else {
		if r.subscribeAt == nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("relay: join %q at %s: %w: no log reader", ann.Stream, at.UTC().Format(time.RFC3339Nano), ErrSubscription)
		}
		cfg := r.hubConfig()
		cfg.start, cfg.shifted, cfg.videoCodec = StartGOP, true, codec
		cfg.subscribe = func(ctx context.Context, name string, handler func(bus.Message)) (subscription, error) {
			return r.subscribeAt(ctx, name, at, handler)
		}
		h = newHub(cfg, ann, "")
		r.private[h] = struct{}{}
		h.start()
	}
	h.refs++
	r.mu.Unlock()

	select {
	case <-h.ready:
	case <-ctx.Done():
		r.release(h)
		return nil, fmt.Errorf("relay: join %q: %w", ann.Stream, ctx.Err())
	}
	if h.setupErr != nil {
		r.release(h)
		return nil, h.setupErr
	}
	return h, nil
}

// hubConfig is what the relay's hubs get from it.
func (r *Relay) hubConfig() hubConfig {
	return hubConfig{
		start:             r.cfg.Start,
		endGrace:          r.cfg.EndGrace,
		retransmitPackets: r.cfg.RetransmitPackets,
		maxGOPFrames:      r.maxGOPFrames,
		maxGOPBytes:       r.maxGOPBytes,
		endDrain:          r.endDrain,
		log:               r.log,
		subscribe:         r.subscribe,
		subscribed:        func(delta int) { r.subs.Add(int64(delta)) },
		lost:              r.forget,
		keyframes:         r.keyframes,
		padAudio:          r.cfg.AudioGroupPadding,
	}
}

// release drops a viewer's reference on h and shuts h down after the last.
func (r *Relay) release(h *hub) {
	r.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		if r.hubs[keyOf(h)] == h {
			delete(r.hubs, keyOf(h))
		}
		delete(r.private, h)
	}
	r.mu.Unlock()
	if last {
		h.close()
	}
}

// forget removes h from the relay's streams (its subscription is gone), so
// that the next Join creates a new hub.
func (r *Relay) forget(h *hub) {
	r.mu.Lock()
	if r.hubs[keyOf(h)] == h {
		delete(r.hubs, keyOf(h))
	}
	r.mu.Unlock()
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	names := make(map[string]struct{}, len(r.hubs))
	for k := range r.hubs {
		names[k.name] = struct{}{}
	}
	n := len(names)
	r.mu.Unlock()
	return Stats{Streams: n, Subscriptions: int(r.subs.Load()), Viewers: int(r.viewers.Load())}
}

// Close ends every viewer with ErrClosed, stops every hub and its
// subscription and waits for them. Viewers must still be closed (which is
// then cheap). Join after Close returns ErrClosed.
func (r *Relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	hubs := make([]*hub, 0, len(r.hubs)+len(r.private))
	for _, h := range r.hubs {
		hubs = append(hubs, h)
	}
	for h := range r.private {
		hubs = append(hubs, h)
	}
	clear(r.hubs)
	clear(r.private)
	r.mu.Unlock()

	for _, h := range hubs {
		h.end(fmt.Errorf("relay: stream %q: %w", h.name, ErrClosed))
		h.close()
	}
	if r.catalogStop != nil {
		r.catalogStop()
		<-r.catalogDone
	}
}

// watchCatalog forwards catalog changes to the hubs of their streams.
func (r *Relay) watchCatalog(ch <-chan bus.CatalogEntry) {
	defer close(r.catalogDone)
	for e := range ch {
		var hubs [3]*hub // the stream's hubs: no video, H.264, H.265
		r.mu.Lock()
		for i, c := range [...]tsframes.Codec{"", tsframes.CodecH264, tsframes.CodecH265} {
			hubs[i] = r.hubs[hubKey{e.Stream, c}]
		}
		r.mu.Unlock()
		for _, h := range hubs {
			if h != nil {
				h.catalog(e)
			}
		}
	}
}
