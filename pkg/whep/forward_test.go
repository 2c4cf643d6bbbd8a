package whep

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// TestForwarding plays a session on node A and PATCHes and DELETEs it
// through node B.
func TestForwarding(t *testing.T) {
	ctx := t.Context()
	ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	a := newTestServer(t, func(c *Config) { c.NodeID = "node-a" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	b := newTestServer(t, func(c *Config) { c.NodeID = "node-b" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	a.catalog.set(liveEntry("cam", trackH264, trackOpus))
	b.catalog.set(liveEntry("cam", trackH264, trackOpus))

	c, resp := a.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	location, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
	if !strings.HasPrefix(location, "/whep/cam/node-a.") {
		t.Fatalf("Location %q", location)
	}
	c.waitPackets(t, ctx, 3)
	_, trickle := fragmentOf(t, c.pc.LocalDescription().SDP)
	frag := hdr("Content-Type", sdpfrag.MediaType)

	// Trickle through B: the owner's 204.
	r, body := b.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag, "Origin", "https://p.example"), trickle)
	if r.StatusCode != 204 || body != "" || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("forwarded trickle = %d %q %v", r.StatusCode, body, r.Header)
	}
	// The owner's errors come back with their headers.
	r, _ = b.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", `"ffffffffffffffff"`), trickle)
	if r.StatusCode != 412 {
		t.Fatalf("forwarded stale If-Match = %d", r.StatusCode)
	}
	r, _ = b.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", "text/plain"), trickle)
	if r.StatusCode != 415 {
		t.Fatalf("forwarded wrong type = %d", r.StatusCode)
	}

	// ICE restart through B.
	_, restart := clientRestart(t, ctx, c)
	r, body = b.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag), restart)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != sdpfrag.MediaType || !reETag.MatchString(r.Header.Get("ETag")) ||
		r.Header.Get("ETag") == etag {
		t.Fatalf("forwarded restart = %d %v %q", r.StatusCode, r.Header, body)
	}
	answer, err := sdpfrag.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	applyRestartAnswer(t, c, answer)
	c.waitPackets(t, ctx, 5)

	// DELETE through B, then 404 on both.
	r, _ = b.do(t, ctx, http.MethodDelete, location, nil, "")
	if r.StatusCode != 200 {
		t.Fatalf("forwarded DELETE = %d", r.StatusCode)
	}
	a.waitSessions(t, ctx, 0)
	for _, ts := range []*testServer{a, b} {
		if r, _ := ts.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 404 {
			t.Fatalf("DELETE after DELETE = %d", r.StatusCode)
		}
		if r, _ := ts.do(t, ctx, http.MethodPatch, location, frag, trickle); r.StatusCode != 404 {
			t.Fatalf("PATCH after DELETE = %d", r.StatusCode)
		}
	}

	// A node nobody runs: no responders, 404 at once.
	start := time.Now()
	if r, _ := b.do(t, ctx, http.MethodDelete, "/whep/cam/node-gone.aaaaaaaaaaaaaaaaaaaaaaaaaa", nil, ""); r.StatusCode != 404 {
		t.Fatalf("DELETE on a gone node = %d", r.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gone node took %v", d)
	}
}

// TestForwardToClosedNode checks that a node that closed answers 404 for
// its former sessions through another node.
func TestForwardToClosedNode(t *testing.T) {
	ctx := t.Context()
	ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	a := newTestServer(t, func(c *Config) { c.NodeID = "node-a" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	b := newTestServer(t, func(c *Config) { c.NodeID = "node-b" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	a.catalog.set(liveEntry("cam", trackH264))
	resp, body := a.post(t, ctx, "cam", fixedOffer("video"), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	if err := a.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, ""); r.StatusCode != 404 {
		t.Fatalf("DELETE via B after A closed = %d", r.StatusCode)
	}
	if v := a.media.all()[0]; !v.isClosed() {
		t.Fatal("viewer of a closed server still open")
	}
}
