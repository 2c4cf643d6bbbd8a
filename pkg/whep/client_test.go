package whep

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/whepcast/whepcast/internal/piontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait of a test and every request.
const testTimeout = 30 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WHEP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testServer is a Server on loopback with a fake catalog and media, served
// by an httptest server.
type testServer struct {
	srv     *Server
	http    *httptest.Server
	catalog *fakeCatalog
	media   *fakeMedia
	reg     *prometheus.Registry
	client  *http.Client
}

func newTestServer(t *testing.T, mod func(*Config), deps ...func(*Deps)) *testServer {
	t.Helper()
	cfg := Config{}
	cfg.ICEUDPAddr = "127.0.0.1:0"
	cfg.UDPGSO = true // the default of config.WHEP
	cfg.MaxWaiting = 10
	cfg.WaitTimeout = 5 * time.Second
	cfg.NodeID = "node-a"
	if mod != nil {
		mod(&cfg)
	}
	ts := &testServer{catalog: newFakeCatalog(), media: &fakeMedia{}, reg: prometheus.NewRegistry()}
	d := Deps{Catalog: ts.catalog, Media: ts.media, Logger: testLogger(t), Registerer: ts.reg}
	for _, f := range deps {
		f(&d)
	}
	srv, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/whep/", srv.Handler())
	mux.Handle("/sessions", srv.SessionsHandler())
	ts.http = httptest.NewServer(mux)
	ts.client = &http.Client{Transport: &http.Transport{}, Timeout: testTimeout}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ts.http.Close()
		ts.client.CloseIdleConnections()
	})
	return ts
}

// do sends a request and returns the response with its body read.
func (ts *testServer) do(t *testing.T, ctx context.Context, method, path string, h http.Header, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// post sends an SDP offer.
func (ts *testServer) post(t *testing.T, ctx context.Context, stream, offer string, h http.Header) (*http.Response, string) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/sdp")
	}
	return ts.do(t, ctx, http.MethodPost, "/whep/"+stream, h, offer)
}

// testClient is a pion WHEP player on 127.0.0.1 (udp4 only).
type testClient struct {
	packets   atomic.Int64 // RTP packets received on all tracks
	pc        *webrtc.PeerConnection
	tracks    chan *webrtc.TrackRemote
	connected chan struct{}
	failed    chan struct{}
}

// newTestClient returns a client with a recvonly transceiver per kind.
func newTestClient(t *testing.T, kinds ...webrtc.RTPCodecType) *testClient {
	t.Helper()
	pc := piontest.RecvOnly(t, func(se *webrtc.SettingEngine) {
		se.LoggerFactory = pionLoggerFactory{logger: slog.New(slog.DiscardHandler)}
	}, kinds...)
	c := &testClient{pc: pc, tracks: make(chan *webrtc.TrackRemote, 4), connected: make(chan struct{}), failed: make(chan struct{})}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	// pion calls this from a new goroutine per state change.
	var connOnce, failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(c.failed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		select {
		case c.tracks <- tr:
		default:
		}
		go func() { // count and drain; ends when the connection closes
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				c.packets.Add(1)
			}
		}()
	})
	return c
}

// offer returns the client's offer with all its candidates.
func (c *testClient) offer(t *testing.T) string {
	t.Helper()
	return piontest.Offer(t, c.pc)
}

func (c *testClient) setAnswer(t *testing.T, sdp string) {
	t.Helper()
	piontest.Answer(t, c.pc, sdp)
}

func (c *testClient) waitConnected(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-c.connected:
	case <-c.failed:
		t.Fatal("client connection failed")
	case <-time.After(testTimeout):
		t.Fatal("client did not connect")
	}
}

// waitTrack returns the next remote track.
func (c *testClient) waitTrack(t *testing.T, ctx context.Context) *webrtc.TrackRemote {
	t.Helper()
	select {
	case tr := <-c.tracks:
		return tr
	case <-time.After(testTimeout):
		t.Fatal("no track received")
		return nil
	}
}

// waitFor polls cond until it holds, at most testTimeout or until ctx
// ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// playSession posts an offer of kinds on stream (which must be live),
// connects and returns the client and the 201.
func (ts *testServer) playSession(t *testing.T, ctx context.Context, stream string, kinds ...webrtc.RTPCodecType) (*testClient, *http.Response) {
	t.Helper()
	c := newTestClient(t, kinds...)
	resp, body := ts.post(t, ctx, stream, c.offer(t), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	c.setAnswer(t, body)
	c.waitConnected(t, ctx)
	return c, resp
}

// waitPackets waits until the client has received n more packets.
func (c *testClient) waitPackets(t *testing.T, ctx context.Context, n int64) {
	t.Helper()
	target := c.packets.Load() + n
	waitFor(t, ctx, fmt.Sprintf("%d RTP packets", n), func() bool {
		select {
		case <-c.failed:
			t.Fatalf("connection closed while waiting for packets (got %d of %d)", c.packets.Load(), target)
		default:
		}
		return c.packets.Load() >= target
	})
}
