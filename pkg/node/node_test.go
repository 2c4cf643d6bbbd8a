package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serveTest runs Serve for nc and cfg on a loopback listener whose address
// it returns. stop ends Serve and returns what Serve returned, failing the
// test if Serve has not returned by the end of ctx.
func serveTest(t *testing.T, ctx context.Context, nc *nats.Conn, cfg config.WHEP) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Serve(serveCtx, ln, nc, cfg, slog.New(slog.DiscardHandler)) }()
	return ln.Addr().String(), func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			t.Fatal("Serve did not return")
			return nil
		}
	}
}

// TestServe serves the node's endpoints and shuts down cleanly when ctx
// ends, leaving no goroutine behind.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, stop := serveTest(t, ctx, natstest.EmbeddedConn(t), config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: time.Second, MaxWaiting: 4})
	base := "http://" + addr
	for path, want := range map[string]string{
		"/healthz":      "ok\n",
		"/readyz":       "ready\n",
		"/sessions":     "[]\n",
		"/metrics":      "whepcast_whep_held_requests 0",
		"/":             "<html",
		"/whep/x/y/z/w": "no WHEP resource at",
		"/whep":         "no WHEP resource at",
		"/whep//cam":    "no WHEP resource at",
	} {
		code, body := get(t, ctx, base+path)
		wantCode := 200
		if strings.HasPrefix(path, "/whep") {
			wantCode = 404
		}
		if code != wantCode || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, code, body, wantCode, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still open after Serve returned")
	}
}

// offer is a recvonly H.264 offer; its session never connects.
const offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB\r\n" +
	"a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" +
	"a=rtpmap:96 H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=setup:actpass\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"

var reEventsLink = regexp.MustCompile(`^<(/whep/cam/[^>]+/events)>; rel="urn:ietf:params:whep:ext:core:server-sent-events"`)

func do(t *testing.T, ctx context.Context, method, url, contentType, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// TestServeDrains stops a node with a session: the node drains (reconnect
// on the session's event stream, /readyz and POST 503, the session goes on)
// and returns once the session is deleted, long before the drain timeout.
func TestServeDrains(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	pub, err := bus.NewPublisher(ctx, nc, "cam", bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Shutdown(context.Background()) }()
	if err := pub.Announce(ctx, tsframes.Announcement{Tracks: []tsframes.Track{{PID: 256, Kind: tsframes.KindVideo,
		Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01e"}}}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- Serve(serveCtx, ln, nc, config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: 10 * time.Second, MaxWaiting: 4,
			DrainTimeout: 30 * time.Second}, slog.New(slog.DiscardHandler))
	}()
	base := "http://" + ln.Addr().String()

	resp := do(t, ctx, http.MethodPost, base+"/whep/cam", "application/sdp", offer)
	resp.Body.Close()
	m := reEventsLink.FindStringSubmatch(resp.Header.Get("Link"))
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("POST = %d, Link %q", resp.StatusCode, resp.Header.Values("Link"))
	}
	location := resp.Header.Get("Location")
	resp = do(t, ctx, http.MethodPost, base+m[1], "application/json", `["reconnect"]`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s = %d", m[1], resp.StatusCode)
	}
	events := do(t, ctx, http.MethodGet, base+resp.Header.Get("Location"), "", "")
	defer events.Body.Close()
	if events.StatusCode != http.StatusOK {
		t.Fatalf("GET events = %d", events.StatusCode)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(events.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	began := time.Now()
	stop()
	for want := "data: {\"url\":\"/whep/cam\"}"; ; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("event stream ended without reconnect")
			}
			if l == want {
				goto told
			}
		case <-ctx.Done():
			t.Fatal("no reconnect event")
		}
	}
told:
	// Draining: not ready, no new session, the session and HTTP go on.
	if code, body := get(t, ctx, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining = %d %q", code, body)
	}
	if code, _ := get(t, ctx, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining = %d", code)
	}
	if code, body := get(t, ctx, base+"/sessions"); code != http.StatusOK || !strings.Contains(body, `"stream": "cam"`) {
		t.Fatalf("/sessions while draining = %d %q", code, body)
	}
	resp = do(t, ctx, http.MethodPost, base+"/whep/cam", "application/sdp", offer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST while draining = %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with a session left", err)
	default:
	}
	resp = do(t, ctx, http.MethodDelete, base+location, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after the last session left")
	}
	if el := time.Since(began); el > 20*time.Second {
		t.Fatalf("shutdown took %v", el)
	}
	for range lines { // the event stream ended with the session
	}
}

// TestServeReplayRateReachesRelay serves with a replay rate that only the
// relay rejects (config.Validate is bypassed): Serve fails with the relay's
// error, so the setting reaches relay.Config.
func TestServeReplayRateReachesRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Serve(ctx, ln, nc, config.WHEP{ICEUDPAddr: "127.0.0.1:0", ReplayRate: 0.5}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, relay.ErrInvalidConfig) || !strings.Contains(err.Error(), "ReplayRate 0.5") {
		t.Fatalf("Serve with replay rate 0.5: %v, want the relay's ErrInvalidConfig", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open")
	}
}
