package whepbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// frameArrival is the arrival of the marker packet of a video access unit
// at the measured viewer of the latency scenario.
type frameArrival struct {
	ts  uint32
	at  time.Time
	key bool
}

// maxFrameLog bounds the arrivals a measured viewer records.
const maxFrameLog = 1 << 20

// viewer is one WHEP session: a receive-only PeerConnection and its counts.
type viewer struct {
	c       *client
	url     string
	measure bool // record every video access unit (latency scenario)

	pc       *webrtc.PeerConnection
	location string
	err      error // why it did not connect

	connectedCh chan struct{} // closed once connected
	failedCh    chan struct{} // closed once failed or closed
	stateOnce   [2]sync.Once
	mediaCh     chan struct{} // closed at the first RTP packet (any track)
	keyframeCh  chan struct{} // closed at the first complete keyframe

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the track readers

	// Times on the client's clock (ns since its epoch); 0 is "never".
	postAt      atomic.Int64
	connectedAt atomic.Int64
	ttff        atomic.Int64 // POST to first complete keyframe
	firstAt     atomic.Int64 // first RTP packet (coarse)
	lastAt      atomic.Int64 // last RTP packet (coarse)
	maxGap      atomic.Int64 // longest silence between packets

	packets   atomic.Int64
	bytes     atomic.Int64
	keyframes atomic.Int64
	malformed atomic.Int64

	frames []frameArrival // measure only; owned by the video reader
}

// openViewer sets a viewer up: offer, POST, answer, and waits until it is
// connected. On failure v.err is set and nothing is left open.
func (c *client) openViewer(ctx context.Context, url string, measure bool, timeout time.Duration) *viewer {
	v := &viewer{c: c, url: url, measure: measure, connectedCh: make(chan struct{}), failedCh: make(chan struct{}),
		mediaCh: make(chan struct{}), keyframeCh: make(chan struct{})}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := v.connect(ctx); err != nil {
		v.err = err
		v.close(context.WithoutCancel(ctx))
	}
	return v
}

func (v *viewer) connect(ctx context.Context) error {
	pc, err := v.c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("new PeerConnection: %w", err)
	}
	v.mu.Lock()
	v.pc = pc
	v.mu.Unlock()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("adding a %s transceiver: %w", kind, err)
		}
	}
	pc.OnTrack(v.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			v.connectedAt.CompareAndSwap(0, v.c.clock.precise())
			v.stateOnce[0].Do(func() { close(v.connectedCh) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.stateOnce[1].Do(func() { close(v.failedCh) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("creating the offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("setting the offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering candidates: %w", context.Cause(ctx))
	}
	v.postAt.Store(v.c.clock.precise())
	answer, location, err := v.c.post(ctx, v.url, pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.location = location
	v.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: setting the answer: %w", ErrWHEP, err)
	}
	select {
	case <-v.connectedCh:
		return nil
	case <-v.failedCh:
		return fmt.Errorf("%w: ICE/DTLS failed", ErrNotConnected)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: connect timeout", ErrNotConnected)
		}
		return fmt.Errorf("%w: %w", ErrNotConnected, context.Cause(ctx))
	}
}

// onTrack reads a track until the PeerConnection closes.
func (v *viewer) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.wg.Add(1)
	v.mu.Unlock()
	defer v.wg.Done()

	video := track.Kind() == webrtc.RTPCodecTypeVideo
	detector := newKeyframeDetector()
	buf := make([]byte, rtpBufferSize)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		v.packets.Add(1)
		v.bytes.Add(int64(n))
		now := v.c.clock.coarse()
		if prev := v.lastAt.Swap(now); prev == 0 {
			// The clock never reads 0: only the first packet of all
			// tracks gets here.
			v.firstAt.CompareAndSwap(0, now)
			close(v.mediaCh)
		} else {
			v.noteGap(now - prev)
		}
		if !video {
			continue
		}
		h, ok := parseRTP(buf[:n])
		if !ok {
			v.malformed.Add(1)
			continue
		}
		end, key := detector.push(h.seq, h.marker, h.payload)
		if !end {
			continue
		}
		if key {
			if v.keyframes.Add(1) == 1 {
				v.ttff.Store(v.c.clock.precise() - v.postAt.Load())
				close(v.keyframeCh)
			}
		}
		if v.measure && len(v.frames) < maxFrameLog {
			v.frames = append(v.frames, frameArrival{ts: h.timestamp, at: time.Now(), key: key})
		}
	}
}

func (v *viewer) noteGap(gap int64) {
	for {
		cur := v.maxGap.Load()
		if gap <= cur || v.maxGap.CompareAndSwap(cur, gap) {
			return
		}
	}
}

// close DELETEs the session (when it was created) and closes the
// PeerConnection; it returns the DELETE's error. The track readers have
// ended when it returns.
func (v *viewer) close(ctx context.Context) error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		v.wg.Wait()
		return nil
	}
	v.closed = true
	pc, location := v.pc, v.location
	v.mu.Unlock()
	var err error
	if location != "" {
		err = v.c.delete(ctx, location)
	}
	if pc != nil {
		if cerr := pc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the PeerConnection: %w", cerr)
		}
	}
	v.wg.Wait()
	return err
}

// closeViewers closes viewers, closeParallel at a time, and returns how
// many DELETEs failed.
func closeViewers(ctx context.Context, viewers []*viewer) int {
	var failed atomic.Int64
	sem := make(chan struct{}, closeParallel)
	var wg sync.WaitGroup
	for _, v := range viewers {
		if v == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := v.close(ctx); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}
