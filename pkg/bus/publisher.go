package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Publisher defaults and limits.
const (
	DefaultMaxInFlight    = 256
	DefaultStallTimeout   = 2 * time.Second
	DefaultCatalogRefresh = 2 * time.Second
	// AckTimeout is how long a published message may wait for its
	// acknowledgement before it counts as failed and frees its slot.
	AckTimeout = 10 * time.Second
	// HeaderRoom is the part of the max payload kept for headers when a
	// frame is split.
	HeaderRoom = 1024
	// MaxParts bounds the number of messages one frame may span.
	MaxParts = 4096
)

// PublisherConfig configures a Publisher. The zero value means the defaults.
type PublisherConfig struct {
	// Stream is the retention of the media stream; it is applied (created
	// or updated) by NewPublisher.
	Stream StreamConfig
	// MaxInFlight bounds the messages awaiting their JetStream ack
	// (default 256).
	MaxInFlight int
	// StallTimeout is how long Publish may wait for room in the in-flight
	// window before the frame is dropped and counted (default 2 s).
	// Publish never blocks longer.
	StallTimeout time.Duration
	// CatalogRefresh is the period of the catalog refresh (default 2 s,
	// at most a third of CatalogTTL).
	CatalogRefresh time.Duration
	// Epoch identifies the publication; 0 means time.Now().UnixNano().
	Epoch uint64
	// Logger receives warnings (default: discarded).
	Logger *slog.Logger
	// OnAck, when set, is called once per message published by Publish
	// (frame parts and the announcements before keyframes) with the time
	// from publish to acknowledgement and the error (nil when stored; the
	// latency is 0 when unknown). It runs on a NATS goroutine and must not
	// block.
	OnAck func(latency time.Duration, err error)
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	c.Stream = c.Stream.withDefaults()
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.CatalogRefresh == 0 {
		c.CatalogRefresh = DefaultCatalogRefresh
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c. Zero fields are valid.
func (c PublisherConfig) Validate() error {
	if err := c.Stream.Validate(); err != nil {
		return err
	}
	c = c.withDefaults()
	switch {
	case c.MaxInFlight < 1:
		return fmt.Errorf("bus: publisher max in-flight %d: want at least 1", c.MaxInFlight)
	case c.StallTimeout < time.Millisecond:
		return fmt.Errorf("bus: publisher stall timeout %v: want at least 1ms", c.StallTimeout)
	case c.CatalogRefresh < 10*time.Millisecond || c.CatalogRefresh > CatalogTTL/3:
		return fmt.Errorf("bus: catalog refresh %v: want 10ms to %v", c.CatalogRefresh, CatalogTTL/3)
	}
	return nil
}

// PublishStats are the counters of a Publisher.
type PublishStats struct {
	// Messages and Bytes count the messages (frame parts and
	// announcements) handed to NATS and their payload bytes.
	Messages uint64
	Bytes    uint64
	// Frames counts the frames published in full.
	Frames uint64
	// Acked counts the messages acknowledged by JetStream.
	Acked uint64
	// Errors counts NATS errors: failed publishes and failed or missing
	// acknowledgements.
	Errors uint64
	// Dropped counts the frames not published (see ErrDropped).
	Dropped uint64
	// InFlight is the number of messages awaiting their acknowledgement.
	InFlight int
}

// Publisher writes one publication (one epoch) of a media stream: its
// track announcements, its frames and its catalog entry.
//
// Announce, Publish and Shutdown may be called from different goroutines;
// they are serialized. Publish is meant to be called from the ingest loop: it
// never blocks longer than StallTimeout.
type Publisher struct {
	// The Publisher orchestrates: enc builds the messages (wire.go),
	// video decides which video frames may go after a loss
	// (video_gate.go), catalog keeps the catalog entry
	// (catalog_refresher.go); the Publisher itself holds the asynchronous
	// send window and the counters.
	nc      *nats.Conn
	js      jetstream.JetStream // the connection's shared context (send_window.go)
	window  *sendWindow
	subj    Subjects
	cfg     PublisherConfig
	epoch   uint64
	enc     encoder
	logger  *slog.Logger
	catalog *catalogRefresher

	// mu serializes Announce, Publish and Shutdown and guards the fields
	// below, and the publishing side of video.
	mu         sync.Mutex
	closed     bool
	annJSON    []byte // latest announcement, nil before Announce
	videoPID   uint16
	audioPID   uint16
	audioGroup []tsframes.Frame // the first packets of a PES, held for its last
	video      videoGate
	// recreated is when the publisher last created the media stream again
	// after it was removed under it (see streamGone).
	recreated time.Time

	// The send window and the counters, shared with the acknowledgement
	// handlers.
	messages, bytes, frames, acked, errs, dropped atomic.Uint64
	sent                                          sync.Map // *nats.Msg -> time.Time, only with OnAck
	// progress is when JetStream last showed progress (Unix ns): an ack, or
	// a publish into an empty window.
	progress atomic.Int64
	// streamGone is set when JetStream answered a publish with no stream
	// (the media stream was removed while the publication ran, by hand or
	// by a race with the reclaimer): the next Publish creates it again.
	streamGone                atomic.Bool
	dropLog, errLog, stallLog logLimiter

	shutdownOnce sync.Once
	shutdownErr  error
}

// NewPublisher validates name and cfg, creates or updates the JetStream
// stream of the media stream (MEDIA_name), opens the catalog and starts the
// catalog refresher; Shutdown stops it. It returns ErrInvalidName (or a
// configuration error) before anything is created. The connection stays
// the caller's.
func NewPublisher(ctx context.Context, nc *nats.Conn, name string, cfg PublisherConfig) (*Publisher, error) {
	subj, err := SubjectsFor(name)
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("bus: new publisher: nil connection")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mp := nc.MaxPayload(); mp > 0 && mp < 2*HeaderRoom {
		return nil, fmt.Errorf("bus: new publisher %q: server max payload %d below %d bytes", name, mp, 2*HeaderRoom)
	}
	cfg = cfg.withDefaults()
	epoch := cfg.Epoch
	if epoch == 0 {
		epoch = uint64(time.Now().UnixNano())
	}
	p := &Publisher{
		nc:     nc,
		subj:   subj,
		cfg:    cfg,
		epoch:  epoch,
		enc:    newEncoder(subj, epoch),
		logger: cfg.Logger.With("stream", name, "epoch", epoch),
	}
	// Synchronous requests only (set-up, announcements): the window
	// publishes the media (send_window.go).
	p.js, err = jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: new publisher %q: %w", name, err)
	}
	if err := ensureStream(ctx, p.js, cfg.Stream.jetStreamConfig(subj), p.logger); err != nil {
		return nil, err
	}
	cat, err := OpenCatalog(ctx, p.js, cfg.Stream.Replicas)
	if err != nil {
		return nil, err
	}
	if p.window, err = newSendWindow(nc, cfg.MaxInFlight, p.onAck, p.onAckErr); err != nil {
		return nil, fmt.Errorf("bus: new publisher %q: %w", name, err)
	}
	p.catalog = &catalogRefresher{
		catalog:     cat,
		stream:      name,
		epoch:       epoch,
		started:     time.Now().UTC(),
		period:      cfg.CatalogRefresh,
		publishErrs: func() uint64 { return p.errs.Load() + p.dropped.Load() },
		logger:      p.logger,
		errLog:      &p.errLog,
	}
	p.catalog.start()
	return p, nil
}

// Epoch is the epoch of this publication.
func (p *Publisher) Epoch() uint64 { return p.epoch }

// Subjects are the subjects this publisher writes to.
func (p *Publisher) Subjects() Subjects { return p.subj }

// Announce publishes the tracks of the current PMT (see Announcement),
// selects the PIDs whose frames Publish carries, and marks the catalog entry
// live. It waits for the announcement's acknowledgement (bounded by ctx).
func (p *Publisher) Announce(ctx context.Context, a tsframes.Announcement) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("bus: announce %s: %w", p.subj.Name, ErrClosed)
	}
	ann := NewAnnouncement(p.subj.Name, p.epoch, a)
	data, err := json.Marshal(ann)
	if err != nil {
		return fmt.Errorf("bus: encode announcement: %w", err)
	}
	_, err = p.js.PublishMsg(ctx, p.enc.announcement(data))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// The stream was removed since NewPublisher (its retention ran
		// out while it was ended, docs/bus.md): create it again.
		p.logger.Info("media stream removed since the publisher started: creating it again")
		if err = ensureStream(ctx, p.js, p.cfg.Stream.jetStreamConfig(p.subj), p.logger); err == nil {
			_, err = p.js.PublishMsg(ctx, p.enc.announcement(data))
		}
	}
	if err != nil {
		p.errs.Add(1)
		return fmt.Errorf("bus: publish announcement of %s: %w", p.subj.Name, err)
	}
	p.messages.Add(1)
	p.bytes.Add(uint64(len(data)))
	if ann.Video != p.videoPID {
		p.video.reset()
	}
	p.annJSON, p.videoPID, p.audioPID = data, ann.Video, ann.Audio
	if err := p.catalog.live(ctx, ann); err != nil {
		return fmt.Errorf("bus: announce %s: %w", p.subj.Name, err)
	}
	return nil
}

// Publish publishes one frame asynchronously: it returns once the frame's
// messages are handed to NATS, not when they are stored. Frames of PIDs
// that the latest announcement did not select (and all frames before the
// first Announce) are ignored and return nil. A keyframe is preceded by a
// copy of the announcement.
//
// Errors: ErrClosed after Shutdown; ctx's error; an error wrapping ErrDropped
// when the frame was not published (the caller should carry on; it also
// wraps nats.ErrConnectionClosed when the connection is gone for good).
// After a dropped video frame, deltas are dropped until the next keyframe.
// After JetStream lost (or may have lost) video (a frame dropped for lack of
// room, or a video message of the current GOP not acknowledged), they are
// dropped until a keyframe is acknowledged: the first delta after that
// keyframe waits for its acknowledgement, within the StallTimeout bound.
//
// Audio packets with More set (the first packets of a PES) are held and
// published with the PES's last packet as one message (see docs/bus.md);
// Publish returns nil for them, and the message's outcome is that of the
// last packet's Publish.
func (p *Publisher) Publish(ctx context.Context, f tsframes.Frame) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.publishLocked(ctx, f)
}

// publishLocked is Publish with mu held.
func (p *Publisher) publishLocked(ctx context.Context, f tsframes.Frame) error {
	if p.closed {
		return fmt.Errorf("bus: publish %s: %w", p.subj.Name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p.audioGroup) > 0 && (f.PID != p.audioPID || p.audioPID == 0) {
		// Cannot happen with tsframes (More is followed by its PES's
		// next packet); should it, the packets held go out alone.
		held := p.audioGroup
		p.audioGroup = nil
		for _, a := range held {
			a.More = false
			if err := p.publishLocked(ctx, a); err != nil {
				return err
			}
		}
	}
	packets := []tsframes.Frame{f} // the frame, or the audio packets of one PES
	video := false
	switch {
	case p.videoPID != 0 && f.PID == p.videoPID:
		video = true
	case p.audioPID != 0 && f.PID == p.audioPID:
		// The packets of one PES go out as one message when the last
		// arrives (they arrive together: nothing waits).
		if f.More && len(p.audioGroup) < MaxAudioGroup-1 {
			p.audioGroup = append(p.audioGroup, f)
			return nil
		}
		if len(p.audioGroup) > 0 {
			// A copy: the messages are built from it after the held
			// packets are released.
			packets = append(append(make([]tsframes.Frame, 0, len(p.audioGroup)+1), p.audioGroup...), f)
			clear(p.audioGroup)
			p.audioGroup = p.audioGroup[:0]
		}
	default:
		return nil
	}
	key := f.Key
	deadline := time.Now().Add(p.cfg.StallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if p.streamGone.Load() && time.Since(p.recreated) >= recreateInterval {
		p.recreateStream(ctx, deadline)
	}
	// JetStream acknowledged nothing for StallTimeout while messages are in
	// flight: as when the window stays full (see drop), but a stream with
	// few messages may never fill it.
	if p.window.inFlight() > 0 && time.Since(time.Unix(0, p.progress.Load())) > p.cfg.StallTimeout {
		p.abandonInFlight()
	}
	if video && !p.video.admit(ctx, key, deadline) {
		return p.drop(packets, video, errors.New("waiting for a keyframe after a dropped video frame"))
	}
	if key && p.annJSON != nil {
		// The rollup keeps only this copy; it guarantees that the
		// announcement outlives byte-based discard of older frames.
		if err := p.publishAsync(p.enc.announcement(p.annJSON), deadline); err != nil {
			return p.drop(packets, video, fmt.Errorf("announcement before keyframe: %w", err))
		}
	}
	msgs, err := p.enc.frame(video, packets, partSize(p.nc.MaxPayload()))
	if err != nil {
		return p.drop(packets, video, err)
	}
	var gop uint64
	if video {
		gop = p.video.begin(key, msgs[0])
	}
	for i, m := range msgs {
		if err := p.publishFrameMsg(m, video, gop, deadline); err != nil {
			p.video.abort()
			p.dropped.Add(uint64(len(packets) - 1))
			if i > 0 {
				err = fmt.Errorf("part %d/%d: %w", i+1, len(msgs), err)
			}
			return p.drop(packets, video, err)
		}
	}
	p.frames.Add(uint64(len(packets)))
	if video {
		p.video.published(key)
	}
	return nil
}

// recreateInterval spaces the attempts to create a removed media stream
// again.
const recreateInterval = time.Second

// recreateStream creates the media stream again after it was removed under
// the publication, with the latest announcement first; the video resumes
// at a keyframe (what was published in between is lost). A failure is
// logged and tried again recreateInterval later. Called with mu held.
func (p *Publisher) recreateStream(ctx context.Context, deadline time.Time) {
	p.recreated = time.Now()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := ensureStream(ctx, p.js, p.cfg.Stream.jetStreamConfig(p.subj), p.logger); err != nil {
		if p.errLog.allow(time.Now()) {
			p.logger.Warn("media stream removed during the publication: creating it again failed", "err", err)
		}
		return
	}
	p.streamGone.Store(false)
	p.video.breakVideo()
	p.logger.Info("media stream removed during the publication: created it again")
	if p.annJSON != nil {
		if err := p.publishAsync(p.enc.announcement(p.annJSON), deadline); err != nil {
			p.logger.Warn("announcement after creating the media stream again not published", "err", err)
		}
	}
}

// publishFrameMsg is publishAsync that, for a message of a video frame,
// has the video gate remember the GOP it belongs to until it is settled.
func (p *Publisher) publishFrameMsg(m *nats.Msg, video bool, gop uint64, deadline time.Time) error {
	if !video {
		return p.publishAsync(m, deadline)
	}
	p.video.track(m, gop)
	err := p.publishAsync(m, deadline)
	if err != nil {
		p.video.untrack(m)
	}
	return err
}

// publishAsync hands m to JetStream, waiting at most until deadline for room
// in the in-flight window.
func (p *Publisher) publishAsync(m *nats.Msg, deadline time.Time) error {
	if time.Until(deadline) <= 0 {
		return fmt.Errorf("no room in the in-flight window: %w", jetstream.ErrTooManyStalledMsgs)
	}
	if p.cfg.OnAck != nil {
		p.sent.Store(m, time.Now())
	}
	if p.window.inFlight() == 0 {
		p.progress.Store(time.Now().UnixNano())
	}
	if err := p.window.publish(m, deadline); err != nil {
		if p.cfg.OnAck != nil {
			p.sent.Delete(m)
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			p.errs.Add(1)
		}
		if p.nc.IsClosed() && !errors.Is(err, nats.ErrConnectionClosed) {
			// The first async publish reports a closed connection
			// without wrapping it.
			return fmt.Errorf("%w: %w", nats.ErrConnectionClosed, err)
		}
		return err
	}
	p.messages.Add(1)
	p.bytes.Add(uint64(len(m.Data)))
	return nil
}

// drop counts a frame (packets: the frame, or the audio packets of one PES,
// counted by the caller beyond the first) that was not published and
// returns the error wrapping ErrDropped. Called with mu held.
func (p *Publisher) drop(packets []tsframes.Frame, video bool, cause error) error {
	n := p.dropped.Add(1)
	if video {
		p.video.dropped()
	}
	if errors.Is(cause, jetstream.ErrTooManyStalledMsgs) {
		p.abandonInFlight()
	}
	if p.dropLog.allow(time.Now()) {
		size := 0
		for _, f := range packets {
			size += len(f.Data)
		}
		p.logger.Warn("frame dropped", "pid", packets[0].PID, "key", packets[0].Key, "size", size,
			"dropped_total", n, "in_flight", p.window.inFlight(), "err", cause)
	}
	return fmt.Errorf("bus: publish %s: %w: %w", p.subj.Name, ErrDropped, cause)
}

// abandonInFlight gives up the messages awaiting their acknowledgement
// when the window stayed full for StallTimeout, or nothing was
// acknowledged for StallTimeout with messages in flight: JetStream acknowledges
// nothing (a stream leader died, the election is under way, or it is far
// behind). They count as errors now instead of at AckTimeout, so that
// publishing resumes as soon as JetStream does, and the video is broken (the
// frames in flight are likely lost): it resumes at a keyframe. Called with
// mu held.
func (p *Publisher) abandonInFlight() {
	p.video.breakVideo()
	n := p.window.inFlight()
	if p.stallLog.allow(time.Now()) {
		p.logger.Warn("JetStream acknowledged nothing within the stall timeout: abandoning the messages in flight",
			"in_flight", n, "stall_timeout", p.cfg.StallTimeout)
	}
	// Fails every pending message (onAckErr) and frees the window.
	p.window.abandon()
}

func (p *Publisher) onAck(m *nats.Msg) {
	p.progress.Store(time.Now().UnixNano())
	p.acked.Add(1)
	p.video.acked(m)
	if p.cfg.OnAck != nil {
		if t, ok := p.sent.LoadAndDelete(m); ok {
			p.cfg.OnAck(time.Since(t.(time.Time)), nil)
		}
	}
}

func (p *Publisher) onAckErr(m *nats.Msg, err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		p.streamGone.Store(true)
	}
	n := p.errs.Add(1)
	p.video.failed(m)
	if p.errLog.allow(time.Now()) {
		p.logger.Warn("publish not acknowledged", "subject", m.Subject, "errors_total", n, "err", err)
	}
	if p.cfg.OnAck != nil {
		var latency time.Duration
		if t, ok := p.sent.LoadAndDelete(m); ok {
			latency = time.Since(t.(time.Time))
		}
		p.cfg.OnAck(latency, err)
	}
}

// SetIngestStats sets the ingest counters shown in the catalog entry from
// the next refresh on. PublishErrs is replaced by the publisher's own count.
func (p *Publisher) SetIngestStats(s IngestStats) { p.catalog.setIngest(s) }

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublishStats {
	return PublishStats{
		Messages: p.messages.Load(),
		Bytes:    p.bytes.Load(),
		Frames:   p.frames.Load(),
		Acked:    p.acked.Load(),
		Errors:   p.errs.Load(),
		Dropped:  p.dropped.Load(),
		InFlight: p.window.inFlight(),
	}
}

// Shutdown stops the publisher gracefully: later calls return ErrClosed,
// in-flight messages are flushed (bounded by ctx), the catalog entry is
// marked ended (unless a later epoch took it over; attempted for up to 2 s
// even when ctx ended during the flush) and the refresher stops. It does
// not close the connection. Calling Shutdown again returns the first result.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() { p.shutdownErr = p.shutdown(ctx) })
	return p.shutdownErr
}

func (p *Publisher) shutdown(ctx context.Context) error {
	p.mu.Lock()
	if n := len(p.audioGroup); n > 0 {
		// The ingest ended within a PES: its packets go out now.
		last := p.audioGroup[n-1]
		p.audioGroup = p.audioGroup[:n-1]
		last.More = false
		if err := p.publishLocked(ctx, last); err != nil {
			p.logger.Debug("last audio packets not published", "err", err)
		}
	}
	p.closed = true
	p.mu.Unlock()
	p.catalog.close()

	var errs []error
	if err := p.window.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("bus: close %s: %w", p.subj.Name, err))
	}
	if err := p.catalog.end(ctx); err != nil {
		errs = append(errs, fmt.Errorf("bus: close %s: mark catalog entry ended: %w", p.subj.Name, err))
	}
	return errors.Join(errs...)
}
