package relay

import (
	"context"
	"errors"
	"go.uber.org/goleak"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
)

// sent is one packet a recorder got.
type sent struct {
	hdr     rtp.Header
	payload []byte
	at      time.Time
}

// recorder is a WriteStream that keeps what it is given. When gate is set,
// WriteRTP blocks until the gate is closed (a slow viewer).
type recorder struct {
	mu     sync.Mutex
	pkts   []sent
	notify chan struct{}
	gate   chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if r.gate != nil {
		<-r.gate
	}
	hdr := *h
	hdr.Extensions = nil
	r.mu.Lock()
	r.pkts = append(r.pkts, sent{hdr: hdr, payload: payload, at: time.Now()})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return len(payload), nil
}

func (r *recorder) Write([]byte) (int, error) { return 0, errors.New("recorder: Write not used") }

// snapshot returns the packets so far.
func (r *recorder) snapshot() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.pkts...)
}

// waitFor waits until ok(packets) holds, failing the test at the deadline.
func (r *recorder) waitFor(t testing.TB, d time.Duration, what string, ok func([]sent) bool) []sent {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if p := r.snapshot(); ok(p) {
			return p
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("timeout after %s waiting for %s (%d packets)", d, what, len(r.snapshot()))
		}
	}
}

// waitCount waits for at least n packets.
func (r *recorder) waitCount(t testing.TB, n int) []sent {
	t.Helper()
	return r.waitFor(t, 10*time.Second, "packets", func(p []sent) bool { return len(p) >= n })
}

// counter is a WriteStream that only counts (benchmarks): cheap enough not
// to hide the relay's own cost.
type counter struct {
	n    atomic.Int64
	want atomic.Int64
	mu   sync.Mutex
	cond *sync.Cond
}

func newCounter() *counter {
	c := &counter{}
	c.cond = sync.NewCond(&c.mu)
	c.want.Store(math.MaxInt64)
	return c
}

func (c *counter) WriteRTP(_ *rtp.Header, _ []byte) (int, error) {
	if c.n.Add(1) >= c.want.Load() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	return 0, nil
}

func (c *counter) Write([]byte) (int, error) { return 0, nil }

// waitAtLeast waits until n packets were written.
func (c *counter) waitAtLeast(n int64) {
	c.want.Store(n)
	c.mu.Lock()
	for c.n.Load() < n {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// trackContext is a webrtc.TrackLocalContext without a PeerConnection.
type trackContext struct {
	id      string
	ssrc    webrtc.SSRC
	rtxSSRC webrtc.SSRC // 0: no RTX negotiated
	codecs  []webrtc.RTPCodecParameters
	ws      webrtc.TrackLocalWriter
}

func (c *trackContext) CodecParameters() []webrtc.RTPCodecParameters { return c.codecs }
func (c *trackContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return nil
}
func (c *trackContext) SSRC() webrtc.SSRC                       { return c.ssrc }
func (c *trackContext) SSRCRetransmission() webrtc.SSRC         { return c.rtxSSRC }
func (c *trackContext) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (c *trackContext) WriteStream() webrtc.TrackLocalWriter    { return c.ws }
func (c *trackContext) ID() string                              { return c.id }
func (c *trackContext) RTCPReader() interceptor.RTCPReader      { return nil }

// Payload types a fake peer negotiates.
const (
	fakePTVideo = 102
	fakePTAudio = 109
)

// bind binds tr as a PeerConnection would, with ssrc and a payload type of
// the fake peer, writing to ws.
func bind(t testing.TB, tr webrtc.TrackLocal, ssrc uint32, ws webrtc.TrackLocalWriter) {
	t.Helper()
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: h264Capability("42e01f"), PayloadType: fakePTVideo},
		{RTPCodecCapability: opusCapability(), PayloadType: fakePTAudio},
	}
	if _, err := tr.Bind(&trackContext{id: "fake", ssrc: webrtc.SSRC(ssrc), codecs: codecs, ws: ws}); err != nil {
		t.Fatalf("bind: %v", err)
	}
}

// fakeBus is the bus of unit tests: the test goroutine plays the
// subscription's handler goroutine with send.
type fakeBus struct {
	mu       sync.Mutex
	subs     map[string]*fakeSub
	opened   int
	failNext error
	block    chan struct{} // when set, subscribe waits for it (or ctx)
}

type fakeSub struct {
	handler func(bus.Message)
	done    chan struct{}
	once    sync.Once
	err     error
}

func (s *fakeSub) Close()                { s.once.Do(func() { close(s.done) }) }
func (s *fakeSub) Done() <-chan struct{} { return s.done }
func (s *fakeSub) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func newFakeBus() *fakeBus { return &fakeBus{subs: make(map[string]*fakeSub)} }

func (b *fakeBus) subscribe(ctx context.Context, name string, handler func(bus.Message)) (subscription, error) {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.failNext; err != nil {
		b.failNext = nil
		return nil, err
	}
	s := &fakeSub{handler: handler, done: make(chan struct{})}
	b.subs[name] = s
	b.opened++
	return s, nil
}

// send delivers msgs to the subscription of name, if it is open.
func (b *fakeBus) send(name string, msgs ...bus.Message) {
	b.mu.Lock()
	s := b.subs[name]
	b.mu.Unlock()
	if s == nil {
		return
	}
	for _, m := range msgs {
		select {
		case <-s.done:
			return
		default:
		}
		s.handler(m)
	}
}

// fail ends the subscription of name with err.
func (b *fakeBus) fail(name string, err error) {
	b.mu.Lock()
	s := b.subs[name]
	b.mu.Unlock()
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// newTestRelay returns a relay on a fake bus, closed at the end of the test.
func newTestRelay(t testing.TB, cfg Config, catalog catalogSource) (*Relay, *fakeBus) {
	t.Helper()
	b := newFakeBus()
	r, err := newRelay(cfg, b.subscribe, catalog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, b
}

// checkLeaks fails the test if goroutines are left once its cleanups ran;
// call it first.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// fakeCatalog is a catalogSource fed by the test.
type fakeCatalog struct {
	mu      sync.Mutex
	entries map[string]bus.CatalogEntry
	subs    []chan bus.CatalogEntry
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{entries: make(map[string]bus.CatalogEntry)}
}

func (c *fakeCatalog) Get(name string) (bus.CatalogEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	return e, ok
}

func (c *fakeCatalog) Subscribe() (<-chan bus.CatalogEntry, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan bus.CatalogEntry, 16)
	c.subs = append(c.subs, ch)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, s := range c.subs {
				if s == ch {
					c.subs = append(c.subs[:i], c.subs[i+1:]...)
				}
			}
			close(ch)
		})
	}
}

// set records e and tells the subscribers.
func (c *fakeCatalog) set(e bus.CatalogEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[e.Stream] = e
	for _, s := range c.subs {
		s <- e
	}
}
