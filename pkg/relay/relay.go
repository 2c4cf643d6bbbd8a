// Package relay is the media engine of a whep-node: it turns the frames of
// a stream on the bus into RTP for every viewer of that stream on this node.
//
// # Contract
//
// Per stream and node there is one hub: ONE bus subscription (from the
// stream's latest keyframe), each frame packetized ONCE into RTP packets, and
// a fan-out of those shared packets to every viewer. Per viewer and packet
// only the RTP header is rewritten (SSRC, payload type, sequence number and
// timestamp offsets) before it is written to the viewer's WriteStream: the
// per-viewer path copies no payload and allocates nothing.
//
//   - H.264 is sent with packetization-mode 1 (single NAL unit, STAP-A for
//     the small NAL units before an IDR, FU-A), at most MaxPayload bytes of
//     payload per packet, the marker bit on each access unit's last packet.
//     Its RTP timestamps are the 90 kHz PTS truncated to 32 bits.
//   - Opus is one packet per RTP packet, at 48 kHz from a fixed origin, so
//     that timestamps step by exactly the packet durations.
//   - Both stay continuous across the 33-bit MPEG-TS wrap and across epochs
//     with the same tracks (see timeline).
//
// A viewer (Relay.Join) gets one webrtc.TrackLocal per kind to add to its
// PeerConnection. After Viewer.Start it receives, with Config.Start "gop",
// the stream's GOP since its latest keyframe at once (timestamps compressed
// just below the live edge, so the backlog adds no latency) and then the live
// feed, without gap or duplicate; audio starts at the live edge. With "live"
// video starts at the next keyframe. A viewer never gets video frames without
// their keyframe.
//
// Each viewer has a bounded queue (Config.ViewerQueue frames). When it is
// full the frame is dropped and counted, and video is skipped up to the next
// keyframe: a slow viewer never slows the hub or the other viewers. NACKs are
// answered from a per-stream buffer of recent packets shared by all viewers
// (Config.RetransmitPackets); PLI and FIR are counted (the encoder cannot be
// asked); receiver reports give loss, jitter and RTT.
//
// Each viewer keeps lock-free histograms of the delay from a frame's arrival
// from the bus (and from its store time in JetStream) to its last RTP packet
// written for that viewer (ViewerStats.BusToRTP, IngestToRTP). The hub reads
// the clock once per frame; a viewer reads it again only for the sampled
// frames (about 1 in 32), which keeps their cost per viewer and packet to a
// few nanoseconds.
//
// A new epoch with the same tracks keeps the viewers: sequence numbers and
// timestamps continue (the first keyframe of the new epoch one frame interval
// after the last frame). Changed tracks end the viewers with
// ErrTracksChanged; a stream the catalog reports ended ends them with
// ErrStreamEnded after Config.EndGrace unless it comes back live.
//
// Every goroutine of a hub ends when its last viewer closes or the relay
// closes; the subscription is stopped then.
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

	DefaultViewerQueue       = 256
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
	// ViewerQueue is each viewer's queue, in frames (default 256).
	ViewerQueue int
	// RetransmitPackets is the per-stream, per-track NACK buffer, in packets
	// (default 4096, at most MaxRetransmitPackets; rounded up to a power of
	// two).
	RetransmitPackets int
	// EndGrace is how long a stream the catalog says ended keeps its viewers
	// (default 5 s).
	EndGrace time.Duration
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

	mu     sync.Mutex
	hubs   map[string]*hub
	closed bool

	subs    atomic.Int64
	viewers atomic.Int64

	// GOP cache limits (MaxGOPFrames, MaxGOPBytes; lowered by tests).
	maxGOPFrames, maxGOPBytes int

	catalogStop func()
	catalogDone chan struct{}
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
	return newRelay(cfg, func(ctx context.Context, name string, handler func(bus.Message)) (subscription, error) {
		return subscribeBus(ctx, conn, name, handler, cfg.Logger)
	}, catalog)
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
		hubs:      make(map[string]*hub),

		maxGOPFrames: MaxGOPFrames,
		maxGOPBytes:  MaxGOPBytes,
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
type Want struct{ Video, Audio bool }

// Join adds a viewer of ann.Stream, where ann is the catalog's current
// announcement of the stream; the viewer's tracks are those of ann it wants.
// The first viewer of a stream on this node creates the stream's hub and its
// bus subscription (Join waits for it, bounded by ctx); the last Close
// releases it. Join returns an error wrapping bus.ErrInvalidName,
// ErrNoTracks, ErrClosed, ErrStreamEnded, ErrSubscription or ctx's error.
func (r *Relay) Join(ctx context.Context, ann bus.Announcement, want Want) (*Viewer, error) {
	if err := bus.ValidateName(ann.Stream); err != nil {
		return nil, fmt.Errorf("relay: join: %w", err)
	}
	set := trackSetOf(ann)
	wantVideo, wantAudio := want.Video && set.video, want.Audio && set.audio
	if !wantVideo && !wantAudio {
		return nil, fmt.Errorf("relay: join %q (stream sends %s): %w", ann.Stream, set, ErrNoTracks)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("relay: join %q: %w", ann.Stream, ErrClosed)
	}
	h := r.hubs[ann.Stream]
	if h == nil {
		h = newHub(r, ann)
		if r.catalog != nil {
			if e, ok := r.catalog.Get(ann.Stream); ok {
				h.catState = e.State
				if e.State == bus.StateEnded {
					h.wake <- struct{}{}
				}
			}
		}
		r.hubs[ann.Stream] = h
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

	v := &Viewer{
		relay:  r,
		hub:    h,
		stream: ann.Stream,
		log:    h.log.With("epoch", ann.Epoch),
		set:    set,
		epoch:  ann.Epoch,
		queue:  make(chan *frame, r.cfg.ViewerQueue),
		nacks:  make(chan nackRequest, nackQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		delays: new(viewerDelays),
	}
	if wantVideo {
		t := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(set.profile), ann.Stream)
		v.video = newTrackWriter(t, h.videoBuf, videoClockRate)
	}
	if wantAudio {
		t := newTrack(webrtc.RTPCodecTypeAudio, opusCapability(), ann.Stream)
		v.audio = newTrackWriter(t, h.audioBuf, audioClockRate)
	}

	live := false
	if r.catalog != nil {
		e, ok := r.catalog.Get(ann.Stream)
		live = ok && e.State == bus.StateLive
	}
	h.mu.Lock()
	if live {
		// The catalog view that made the caller join says live: the hub
		// may not have seen it yet.
		h.ended = false
	}
	var err error
	switch {
	case h.gone != nil:
		err = h.gone
	case h.ended:
		err = fmt.Errorf("relay: join %q: %w", ann.Stream, ErrStreamEnded)
	default:
		h.members[v] = struct{}{}
	}
	h.mu.Unlock()
	if err != nil {
		r.release(h)
		return nil, err
	}
	r.viewers.Add(1)
	return v, nil
}

// release drops a viewer's reference on h and shuts h down after the last.
func (r *Relay) release(h *hub) {
	r.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last && r.hubs[h.name] == h {
		delete(r.hubs, h.name)
	}
	r.mu.Unlock()
	if last {
		h.shutdown()
	}
}

// forget removes h from the relay's streams (its subscription is gone), so
// that the next Join creates a new hub.
func (r *Relay) forget(h *hub) {
	r.mu.Lock()
	if r.hubs[h.name] == h {
		delete(r.hubs, h.name)
	}
	r.mu.Unlock()
}

// viewerClosed accounts for a closed viewer.
func (r *Relay) viewerClosed() { r.viewers.Add(-1) }

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	n := len(r.hubs)
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
	hubs := make([]*hub, 0, len(r.hubs))
	for _, h := range r.hubs {
		hubs = append(hubs, h)
	}
	clear(r.hubs)
	r.mu.Unlock()

	for _, h := range hubs {
		h.mu.Lock()
		h.endAllLocked(fmt.Errorf("relay: stream %q: %w", h.name, ErrClosed))
		h.mu.Unlock()
		h.shutdown()
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
		r.mu.Lock()
		h := r.hubs[e.Stream]
		r.mu.Unlock()
		if h != nil {
			h.catalog(e)
		}
	}
}
