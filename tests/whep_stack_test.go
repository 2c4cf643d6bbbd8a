package tests

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/node"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// whepTestTimeout bounds every WHEP end-to-end test.
const whepTestTimeout = 60 * time.Second

func whepLogger() *slog.Logger {
	if os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// whepLeakCheck fails the test when goroutines it started outlive its
// cleanups. Call it first so that its check runs last.
func whepLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// whepBus starts an in-process NATS server with JetStream and returns a
// function that opens connections to it.
func whepBus(t *testing.T) func() *nats.Conn {
	t.Helper()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	return func() *nats.Conn { return natstest.Connect(t, srv) }
}

// whepNode runs a whep-node (node.Serve) on 127.0.0.1 and returns its base
// URL. The cleanup shuts it down and checks that the shutdown was clean.
func whepNode(t *testing.T, nc *nats.Conn, mod func(*config.WHEP)) string {
	t.Helper()
	cfg := config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: 20 * time.Second, MaxWaiting: 8, Start: "gop"}
	if mod != nil {
		mod(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx, ln, nc, cfg, whepLogger()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node.Serve: %v", err)
			}
		case <-time.After(node.ShutdownTimeout + 5*time.Second):
			t.Error("node did not shut down")
		}
	})
	url := "http://" + ln.Addr().String()
	// The listener is bound: this request waits in its backlog until the
	// node serves, and then must find it ready.
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	if resp, body := whepDo(t, rctx, http.MethodGet, url+"/readyz", nil, ""); resp.StatusCode != 200 || body != "ready\n" {
		t.Fatalf("/readyz = %d %q", resp.StatusCode, body)
	}
	return url
}

// whepPublisher publishes a fixture in real time (paced by its DTS).
type whepPublisher struct {
	announced   chan struct{}
	frames      atomic.Int64
	videoFrames atomic.Int64 // counted by loopPublish only
}

// whepPublish publishes testdata/NAME as stream in real time until the file
// ends or the test ends; the publisher stays open (the stream stays live)
// until the test's cleanup.
func whepPublish(t *testing.T, nc *nats.Conn, stream, name string) *whepPublisher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := bus.NewPublisher(ctx, nc, stream, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tstest.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := &whepPublisher{announced: make(chan struct{})}
	h := &pacedHandler{ctx: ctx, pub: pub, p: p}
	done := make(chan error, 1)
	go func() { done <- tsframes.NewDemuxer(f, tsframes.Options{}).Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("publishing %s: %v", name, err)
		}
		f.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := pub.Shutdown(cctx); err != nil {
			t.Errorf("closing the publisher: %v", err)
		}
	})
	return p
}

// pacedHandler publishes what a Demuxer reads, each frame at its DTS
// relative to the first (a live source).
type pacedHandler struct {
	ctx   context.Context
	pub   *bus.Publisher
	p     *whepPublisher
	once  sync.Once
	start time.Time
	first int64
	begun bool
}

func (h *pacedHandler) Tracks(a tsframes.Announcement) error {
	if err := h.pub.Announce(h.ctx, a); err != nil {
		return err
	}
	h.once.Do(func() { close(h.p.announced) })
	return nil
}

func (h *pacedHandler) Frame(f tsframes.Frame) error {
	if !h.begun {
		h.begun, h.start, h.first = true, time.Now(), f.DTS
	}
	due := h.start.Add(time.Duration(f.DTS-h.first) * time.Second / 90000)
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return h.ctx.Err()
		}
	}
	if err := h.pub.Publish(h.ctx, f); err != nil {
		return err
	}
	h.p.frames.Add(1)
	return nil
}

// whepMetric scrapes url/metrics and returns the value of the first sample
// whose line starts with prefix (name{labels} or name), -1 when absent.
func whepMetric(t *testing.T, url, prefix string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, body := whepDo(t, ctx, http.MethodGet, url+"/metrics", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix+" ") || strings.HasPrefix(line, prefix+"{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// whepWait polls cond every 5 ms until it holds or ctx ends.
func whepWait(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// whepClient is a pion WHEP player on 127.0.0.1 (udp4 only).
type whepClient struct {
	pc        *webrtc.PeerConnection
	connected chan struct{}
	closed    chan struct{}
	mu        sync.Mutex
	packets   map[string]int // by MIME type
	tracks    map[string]bool
}

func newWHEPClient(t *testing.T, kinds ...webrtc.RTPCodecType) *whepClient {
	t.Helper()
	return newWHEPClientWith(t, nil, kinds...)
}

// newWHEPClientWith is newWHEPClient with tune (when not nil) applied to
// its SettingEngine.
func newWHEPClientWith(t *testing.T, tune func(*webrtc.SettingEngine), kinds ...webrtc.RTPCodecType) *whepClient {
	t.Helper()
	pc := piontest.RecvOnly(t, tune, kinds...)
	c := &whepClient{pc: pc, connected: make(chan struct{}), closed: make(chan struct{}),
		packets: map[string]int{}, tracks: map[string]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = pc.GracefulClose()
		wg.Wait()
	})
	var once1, once2 sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once1.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			once2.Do(func() { close(c.closed) })
		}
	})
	piontest.ReadRTP(pc, &wg, func(tr *webrtc.TrackRemote, _ *rtp.Packet, _ time.Time) {
		mime := tr.Codec().MimeType
		c.mu.Lock()
		c.tracks[mime] = true
		c.packets[mime]++
		c.mu.Unlock()
	})
	return c
}

func (c *whepClient) offer(t *testing.T) string {
	t.Helper()
	return piontest.Offer(t, c.pc)
}

func (c *whepClient) answer(t *testing.T, sdp string) {
	t.Helper()
	piontest.Answer(t, c.pc, sdp)
}

func (c *whepClient) count(mime string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets[mime]
}

func (c *whepClient) trackMIMEs() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for k := range c.tracks {
		out[k] = true
	}
	return out
}

// waitPackets waits until n packets of mime have arrived.
func (c *whepClient) waitPackets(t *testing.T, ctx context.Context, mime string, n int) {
	t.Helper()
	whepWait(t, ctx, strconv.Itoa(n)+" "+mime+" packets", func() bool {
		select {
		case <-c.closed:
			t.Fatalf("connection closed with %d %s packets", c.count(mime), mime)
		default:
		}
		return c.count(mime) >= n
	})
}

// whepPost POSTs an offer and returns the response with its body.
func whepPost(t *testing.T, ctx context.Context, url, offer string) (*http.Response, string) {
	t.Helper()
	return whepDo(t, ctx, http.MethodPost, url, http.Header{"Content-Type": {"application/sdp"}}, offer)
}

func whepDo(t *testing.T, ctx context.Context, method, url string, h http.Header, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	// No keep-alive: no idle connection outlives the request (leak checks).
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// e2eWaitUntil waits until the wall clock reaches at (a point of the
// scenario, such as "2 s into the stream"), or fails when ctx ends first.
func e2eWaitUntil(t *testing.T, ctx context.Context, at time.Time) {
	t.Helper()
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatalf("waiting until %v: %v", at, ctx.Err())
	}
}
