package whep

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/pkg/relay"
)

// sessionCount returns the sessions gauge.
func (ts *testServer) sessions(t *testing.T) float64 {
	return gaugeValue(t, ts.reg, "whepcast_whep_sessions")
}

// waitSessions waits until the node has n sessions and n reserved slots.
func (ts *testServer) waitSessions(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("%d sessions", n), func() bool {
		ts.srv.sessions.mu.Lock()
		defer ts.srv.sessions.mu.Unlock()
		return len(ts.srv.sessions.sessions) == n && ts.srv.sessions.total == n
	})
}

func TestDeleteReleasesEverything(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	c.waitPackets(t, ctx, 5)
	v := ts.media.all()[0]
	if !v.isStarted() {
		t.Fatal("viewer not started on connect")
	}
	if v.audio != nil {
		t.Fatal("audio joined for a video-only offer")
	}
	if got := ts.sessions(t); got != 1 {
		t.Fatalf("sessions gauge = %v", got)
	}
	r, _ := ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, "")
	if r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	// DELETE returns once everything is released.
	if !v.isClosed() {
		t.Fatal("viewer not closed when DELETE returned")
	}
	if got := ts.sessions(t); got != 0 {
		t.Fatalf("sessions gauge = %v", got)
	}
	ts.waitSessions(t, ctx, 0)
	select { // ICE consent revoked: the client sees its connection close
	case <-c.failed:
	case <-time.After(testTimeout):
		t.Fatal("client connection still up after DELETE")
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total", "reason", reasonDelete); got != 1 {
		t.Fatalf("closed{delete} = %v", got)
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_failed_total"); got != -1 {
		t.Fatalf("failed = %v, want none", got)
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_time_to_first_frame_seconds", "stream", "cam"); got != 1 {
		t.Fatalf("time to first frame samples = %v", got)
	}
	// The client received 5 packets; the sender counts a packet after its
	// write returns, so the last one may arrive before it is counted.
	if got := metricValue(t, ts.reg, "whepcast_whep_packets_out_total", "stream", "cam", "kind", "video"); got < 4 {
		t.Fatalf("packets out = %v", got)
	}
	_, body := ts.do(t, ctx, http.MethodGet, "/sessions", nil, "")
	if strings.TrimSpace(body) != "[]" {
		t.Fatalf("/sessions = %q", body)
	}
}

func TestSessionsList(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	c.waitPackets(t, ctx, 4)
	list := ts.srv.Sessions()
	if len(list) != 1 {
		t.Fatalf("Sessions = %+v", list)
	}
	s := list[0]
	if "/whep/cam/"+s.ID != resp.Header.Get("Location") || s.Stream != "cam" || s.Epoch != 42 || s.State != "connected" ||
		s.Stats.Video.Packets == 0 || time.Since(s.Created) > time.Minute {
		t.Fatalf("session info %+v", s)
	}
	r, body := ts.do(t, ctx, http.MethodGet, "/sessions", nil, "")
	if r.StatusCode != 200 || !strings.Contains(body, `"id": "`+s.ID+`"`) || !strings.Contains(body, `"state": "connected"`) {
		t.Fatalf("/sessions = %d %s", r.StatusCode, body)
	}
	if r, _ := ts.do(t, ctx, http.MethodPost, "/sessions", nil, ""); r.StatusCode != 405 {
		t.Fatalf("POST /sessions = %d", r.StatusCode)
	}
}

func TestPeerCloseEndsSession(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264))
	c, _ := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	c.waitPackets(t, ctx, 2)
	if err := c.pc.GracefulClose(); err != nil {
		t.Fatal(err)
	}
	ts.waitSessions(t, ctx, 0)
	v := ts.media.all()[0]
	waitFor(t, ctx, "viewer closed", v.isClosed)
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total"); got != 1 {
		t.Fatalf("closed = %v", got)
	}
}

func TestConnectTimeoutEndsSession(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.ConnectTimeout = 200 * time.Millisecond })
	ts.catalog.set(liveEntry("cam", trackH264))
	resp, body := ts.post(t, ctx, "cam", fixedOffer("video"), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	ts.waitSessions(t, ctx, 0)
	v := ts.media.all()[0]
	if v.isStarted() || !v.isClosed() {
		t.Fatalf("viewer started %v closed %v", v.isStarted(), v.isClosed())
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_failed_total", "reason", reasonConnectTimeout); got != 1 {
		t.Fatalf("failed{connect_timeout} = %v", got)
	}
	if r, _ := ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, ""); r.StatusCode != 404 {
		t.Fatalf("DELETE after timeout = %d", r.StatusCode)
	}
}

func TestViewerEndEndsSession(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264))
	c, _ := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	c.waitPackets(t, ctx, 2)
	ts.media.all()[0].end(relay.ErrStreamEnded)
	ts.waitSessions(t, ctx, 0)
	select {
	case <-c.failed:
	case <-time.After(testTimeout):
		t.Fatal("client still connected after the viewer ended")
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total", "reason", reasonViewerEnded); got != 1 {
		t.Fatalf("closed{viewer_ended} = %v", got)
	}
}

// TestICEFailureEndsSession cuts the client's socket (no DTLS close), so
// that the server hears nothing more: ICE fails and the session closes.
func TestICEFailureEndsSession(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) {
		c.ICEDisconnectedTimeout = 300 * time.Millisecond
		c.ICEFailedTimeout = 600 * time.Millisecond
	})
	ts.catalog.set(liveEntry("cam", trackH264))

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lf := pionLoggerFactory{logger: slog.New(slog.DiscardHandler)}
	mux := webrtc.NewICEUDPMux(lf.NewLogger("mux"), conn)
	pc := piontest.RecvOnly(t, func(se *webrtc.SettingEngine) {
		se.LoggerFactory = lf
		se.SetICEUDPMux(mux) // the client's socket, which the test then closes
	}, webrtc.RTPCodecTypeVideo)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	t.Cleanup(func() { _ = pc.Close(); _ = mux.Close() })
	c := &testClient{pc: pc}
	resp, body := ts.post(t, ctx, "cam", c.offer(t), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	c.setAnswer(t, body)
	select {
	case <-connected:
	case <-time.After(testTimeout):
		t.Fatal("not connected")
	}
	_ = conn.Close() // the client vanishes
	ts.waitSessions(t, ctx, 0)
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total", "reason", reasonICEFailed); got != 1 {
		t.Fatalf("closed{ice_failed} = %v", got)
	}
}

// TestHoldUntilLive holds a POST until its stream goes live.
func TestHoldUntilLive(t *testing.T) {
	ctx := t.Context()
	// A short BodyTimeout: the hold must outlive it (the read deadline is
	// lifted once the offer is in).
	ts := newTestServer(t, func(c *Config) { c.BodyTimeout = 50 * time.Millisecond })
	c := newTestClient(t, webrtc.RTPCodecTypeVideo)
	offer := c.offer(t)
	type result struct {
		status int
		body   string
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.http.URL+"/whep/later", strings.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := ts.client.Do(req)
		if err != nil {
			res <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b)}
	}()
	waitFor(t, ctx, "held request", func() bool { _, n := ts.srv.sessions.counts(); return n == 1 })
	// Held for several BodyTimeouts, nothing is answered.
	select {
	case r := <-res:
		t.Fatalf("answered before live: %d %q", r.status, r.body)
	case <-time.After(300 * time.Millisecond):
	}
	if _, n := ts.srv.sessions.counts(); n != 1 {
		t.Fatalf("held = %d after 300ms", n)
	}
	ts.catalog.set(liveEntry("later", trackH264))
	var r result
	select {
	case r = <-res:
	case <-time.After(testTimeout):
		t.Fatal("not answered after live")
	}
	if r.status != 201 {
		t.Fatalf("POST = %d %q", r.status, r.body)
	}
	c.setAnswer(t, r.body)
	c.waitConnected(t, ctx)
	c.waitPackets(t, ctx, 2)
	if _, n := ts.srv.sessions.counts(); n != 0 {
		t.Fatalf("held = %d", n)
	}
}

// TestHoldReleasedWhenClientGoesAway cancels a held POST: the hold is
// released at once and nothing is joined when the stream goes live later.
func TestHoldReleasedWhenClientGoesAway(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.WaitTimeout = time.Hour })
	reqCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(reqCtx, "POST", ts.http.URL+"/whep/later", strings.NewReader(fixedOffer("video")))
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := ts.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, ctx, "held request", func() bool { return gaugeValue(t, ts.reg, "whepcast_whep_held_requests") == 1 })
	cancel()
	<-done
	hold := time.Now()
	waitFor(t, ctx, "hold released", func() bool { return gaugeValue(t, ts.reg, "whepcast_whep_held_requests") == 0 })
	if d := time.Since(hold); d > 2*time.Second {
		t.Fatalf("hold released after %v", d)
	}
	ts.catalog.set(liveEntry("later", trackH264))
	if n := len(ts.media.all()); n != 0 {
		t.Fatalf("%d joins after the client left", n)
	}
}

// TestAbandonedHoldsAreNotOverload abandons held POSTs: each is counted as
// code 499 in whepcast_whep_requests_total, none as 503 (the overload
// alert's series).
func TestAbandonedHoldsAreNotOverload(t *testing.T) {
	const n = 20
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.WaitTimeout = time.Hour; c.MaxWaiting = n })
	reqCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(reqCtx, "POST", ts.http.URL+"/whep/later", strings.NewReader(fixedOffer("video")))
			req.Header.Set("Content-Type", "application/sdp")
			if resp, err := ts.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, ctx, "held requests", func() bool { return gaugeValue(t, ts.reg, "whepcast_whep_held_requests") == n })
	cancel()
	wg.Wait()
	waitFor(t, ctx, "abandoned requests counted", func() bool {
		return metricValue(t, ts.reg, "whepcast_whep_requests_total", "method", "POST", "code", "499") == n
	})
	if got := metricValue(t, ts.reg, "whepcast_whep_requests_total", "method", "POST", "code", "503"); got > 0 { // -1: no such series
		t.Fatalf("%v abandoned POSTs counted as 503", got)
	}
	if got := gaugeValue(t, ts.reg, "whepcast_whep_held_requests"); got != 0 {
		t.Fatalf("%v requests still held", got)
	}
}

// TestManySessionsReturnToBaseline opens and closes sessions every way
// (DELETE, client close, viewer end, connect timeout, refused offers) and
// checks that sessions, holds, slots and goroutines return to baseline.
func TestManySessionsReturnToBaseline(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.ConnectTimeout = 2 * time.Second; c.WaitTimeout = 50 * time.Millisecond })
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	ts.catalog.set(liveEntry("aac", trackAAC))
	// Warm up once so that lazily started runtime goroutines exist.
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, "")
	_ = c.pc.GracefulClose()
	ts.waitSessions(t, ctx, 0)
	ts.client.CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	t.Run("sessions", func(t *testing.T) {
		for i := range 12 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				switch i % 4 {
				case 0: // DELETE
					c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
					c.waitPackets(t, ctx, 2)
					ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, "")
					_ = c.pc.GracefulClose()
				case 1: // client goes away
					c, _ := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeAudio)
					c.waitPackets(t, ctx, 2)
					_ = c.pc.GracefulClose()
				case 2: // never connects
					ts.post(t, ctx, "cam", fixedOffer("video", "audio"), nil)
				case 3: // refused: not playable, not live, malformed
					ts.post(t, ctx, "aac", fixedOffer("audio"), nil)
					ts.post(t, ctx, "nosuch", fixedOffer("audio"), nil)
					ts.post(t, ctx, "cam", "v=0\r\nbroken", nil)
				}
			})
		}
	})
	ts.waitSessions(t, ctx, 0)
	for _, v := range ts.media.all() {
		waitFor(t, ctx, "viewer closed", v.isClosed)
	}
	if _, held := ts.srv.sessions.counts(); held != 0 {
		t.Fatalf("held = %d", held)
	}
	ts.srv.sessions.mu.Lock()
	streams := len(ts.srv.sessions.perStream)
	ts.srv.sessions.mu.Unlock()
	if streams != 0 {
		t.Fatalf("per-stream slots left: %d", streams)
	}
	ts.client.CloseIdleConnections()
	waitFor(t, ctx, fmt.Sprintf("goroutines back to %d", baseline), func() bool { return runtime.NumGoroutine() <= baseline })
}
