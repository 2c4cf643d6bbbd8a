package whep

import (
	"context"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// fakeCatalog is a Catalog whose streams the test sets.
type fakeCatalog struct {
	mu      sync.Mutex
	entries map[string]bus.CatalogEntry
	changed chan struct{}
	nwaits  int
}

func (c *fakeCatalog) waits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nwaits
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{entries: map[string]bus.CatalogEntry{}, changed: make(chan struct{})}
}

func (c *fakeCatalog) set(e bus.CatalogEntry) {
	c.mu.Lock()
	c.entries[e.Stream] = e
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *fakeCatalog) Get(name string) (bus.CatalogEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	return e, ok
}

func (c *fakeCatalog) Wait(ctx context.Context, name string) (bus.CatalogEntry, error) {
	c.mu.Lock()
	c.nwaits++
	c.mu.Unlock()
	for {
		c.mu.Lock()
		e, ok := c.entries[name]
		ch := c.changed
		c.mu.Unlock()
		if ok && e.Playable() {
			return e, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return bus.CatalogEntry{}, ctx.Err()
		}
	}
}

// Announcements of test streams.
var (
	trackH264 = tsframes.Track{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01e"}
	trackOpus = tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2}
	trackAAC  = tsframes.Track{PID: 258, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC}
)

// liveEntry returns a live catalog entry of stream with tracks.
func liveEntry(stream string, tracks ...tsframes.Track) bus.CatalogEntry {
	ann := bus.NewAnnouncement(stream, 42, tsframes.Announcement{Tracks: tracks})
	return bus.CatalogEntry{Stream: stream, Epoch: 42, State: bus.StateLive, Started: time.Now(), Tracks: ann}
}

// fakeMedia is a Media whose viewers send one RTP packet per track every
// 20 ms once started.
type fakeMedia struct {
	mu      sync.Mutex
	viewers []*fakeViewer
	joinErr error
}

func (m *fakeMedia) RegisterCodecs(me *webrtc.MediaEngine, _ bus.Announcement) error {
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return err
	}
	return me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio)
}

func (m *fakeMedia) RegisterInterceptors(*webrtc.MediaEngine, *interceptor.Registry) error {
	return nil
}

func (m *fakeMedia) Join(_ context.Context, ann bus.Announcement, want relay.Want) (Viewer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.joinErr != nil {
		return nil, m.joinErr
	}
	v := &fakeViewer{stream: ann.Stream, started: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{})}
	if want.Video && ann.Video != 0 {
		v.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", ann.Stream)
	}
	if want.Audio && ann.Audio != 0 {
		v.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
			"audio", ann.Stream)
	}
	if v.video == nil && v.audio == nil {
		return nil, relay.ErrNoTracks
	}
	m.viewers = append(m.viewers, v)
	return v, nil
}

func (m *fakeMedia) all() []*fakeViewer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*fakeViewer(nil), m.viewers...)
}

type fakeViewer struct {
	stream       string
	video, audio *webrtc.TrackLocalStaticRTP

	mu         sync.Mutex
	bound      int
	startOnce  sync.Once
	started    chan struct{}
	closeOnce  sync.Once
	closing    bool // Close has begun: Start and BindSenders add nothing
	endOnce    sync.Once
	quit       chan struct{} // Close
	done       chan struct{} // ended or closed
	err        error
	wg         sync.WaitGroup
	packets    uint64
	closedFlag bool
	batcher    relay.Batcher
}

func (v *fakeViewer) VideoTrack() webrtc.TrackLocal {
	if v.video == nil {
		return nil
	}
	return v.video
}

func (v *fakeViewer) AudioTrack() webrtc.TrackLocal {
	if v.audio == nil {
		return nil
	}
	return v.audio
}

func (v *fakeViewer) BindSenders(video, audio *webrtc.RTPSender) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closing {
		return
	}
	for _, s := range []*webrtc.RTPSender{video, audio} {
		if s != nil {
			v.bound++
			v.wg.Add(1)
			go func() { // drain RTCP like the relay does
				defer v.wg.Done()
				buf := make([]byte, 1500)
				for {
					if _, _, err := s.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}
}

func (v *fakeViewer) SetBatcher(b relay.Batcher) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.batcher = b
}

// Start starts sending unless Close has begun: the real viewer serializes
// them too (a WaitGroup must not be added to while Close waits on it).
func (v *fakeViewer) Start() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closing {
		return
	}
	v.startOnce.Do(func() {
		close(v.started)
		v.wg.Add(1)
		go v.send()
	})
}

func (v *fakeViewer) send() {
	defer v.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var seq uint16
	for {
		select {
		case <-v.quit:
			return
		case <-v.done:
			return
		case <-t.C:
		}
		seq++
		v.sendTick(seq)
	}
}

// sendTick writes one packet per track, in one batch when the session gave
// the viewer a batcher (as the relay sends the packets of a frame).
func (v *fakeViewer) sendTick(seq uint16) {
	v.mu.Lock()
	b := v.batcher
	v.mu.Unlock()
	if b != nil && b.Begin() {
		defer b.Flush()
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{v.video, v.audio} {
		if tr == nil {
			continue
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960, Marker: true},
			Payload: []byte{0x65, 1, 2, 3}}
		if err := tr.WriteRTP(pkt); err == nil {
			v.mu.Lock()
			v.packets++
			v.mu.Unlock()
		}
	}
}

// end ends the viewer as the relay would (stream ended).
func (v *fakeViewer) end(err error) {
	v.endOnce.Do(func() {
		v.mu.Lock()
		v.err = err
		v.mu.Unlock()
		close(v.done)
	})
}

func (v *fakeViewer) Done() <-chan struct{} { return v.done }

func (v *fakeViewer) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *fakeViewer) Stats() relay.ViewerStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return relay.ViewerStats{Stream: v.stream, Video: relay.TrackStats{Packets: v.packets, Bytes: 4 * v.packets}}
}

func (v *fakeViewer) Close() {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closing = true
		v.mu.Unlock()
		close(v.quit)
		v.wg.Wait()
		v.mu.Lock()
		v.closedFlag = true
		v.mu.Unlock()
		v.end(relay.ErrClosed)
	})
}

func (v *fakeViewer) isClosed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closedFlag
}

func (v *fakeViewer) isStarted() bool {
	select {
	case <-v.started:
		return true
	default:
		return false
	}
}
