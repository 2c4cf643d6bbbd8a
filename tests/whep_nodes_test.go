package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestWHEPTwoNodes runs two whep-nodes on one bus: a session created on A
// is PATCHed and DELETEd through B (round-robin load balancing), and is gone
// on both afterwards.
func TestWHEPTwoNodes(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	a := whepNode(t, connect(), nil)
	b := whepNode(t, connect(), nil)
	p := whepPublish(t, connect(), "cam", "av.ts")
	select {
	case <-p.announced:
	case <-ctx.Done():
		t.Fatal("not announced")
	}

	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	resp, _ := whepPlay(t, ctx, a, "cam", c)
	location, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
	c.waitPackets(t, ctx, mimeH264, 20)

	// Trickle through B.
	frag := "a=ice-ufrag:" + iceAttr(c.pc.LocalDescription().SDP, "ice-ufrag") + "\r\n" +
		"a=ice-pwd:" + iceAttr(c.pc.LocalDescription().SDP, "ice-pwd") + "\r\n" +
		"m=video 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
	h := http.Header{"Content-Type": {"application/trickle-ice-sdpfrag"}, "If-Match": {etag}}
	if r, body := whepDo(t, ctx, http.MethodPatch, b+location, h, frag); r.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH via B = %d %q", r.StatusCode, body)
	}
	// The owner's precondition check, through B.
	h.Set("If-Match", `"0000000000000000"`)
	if r, _ := whepDo(t, ctx, http.MethodPatch, b+location, h, frag); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale PATCH via B = %d", r.StatusCode)
	}
	c.waitPackets(t, ctx, mimeH264, c.count(mimeH264)+10)

	// DELETE through B ends the session on A.
	if r, body := whepDo(t, ctx, http.MethodDelete, b+location, nil, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE via B = %d %q", r.StatusCode, body)
	}
	select {
	case <-c.closed:
	case <-ctx.Done():
		t.Fatal("client still connected after DELETE")
	}
	if got := whepMetric(t, a, "whepcast_whep_sessions"); got != 0 {
		t.Fatalf("A sessions = %v", got)
	}
	h.Del("If-Match")
	for _, n := range []string{a, b} {
		if r, _ := whepDo(t, ctx, http.MethodDelete, n+location, nil, ""); r.StatusCode != http.StatusNotFound {
			t.Fatalf("DELETE after DELETE = %d", r.StatusCode)
		}
		if r, _ := whepDo(t, ctx, http.MethodPatch, n+location, h, frag); r.StatusCode != http.StatusNotFound {
			t.Fatalf("PATCH after DELETE = %d", r.StatusCode)
		}
	}
	// Health endpoints.
	for _, n := range []string{a, b} {
		if r, body := whepDo(t, ctx, http.MethodGet, n+"/healthz", nil, ""); r.StatusCode != 200 || body != "ok\n" {
			t.Fatalf("/healthz = %d %q", r.StatusCode, body)
		}
	}
}

// iceAttr returns the first value of a=name in an SDP.
func iceAttr(sdp, name string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a="+name+":"); ok {
			return v
		}
	}
	return ""
}
