package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/player"
)

// streamView GETs url (a node's /streams/{stream}) and decodes it.
func streamView(t *testing.T, ctx context.Context, url string) (int, player.StreamView) {
	t.Helper()
	resp, body := whepDo(t, ctx, http.MethodGet, url, nil, "")
	var v player.StreamView
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("GET %s: %v in %q", url, err, body)
		}
	}
	return resp.StatusCode, v
}

// TestStreamListViewersAcrossNodes: two whep-nodes on one bus, two viewers
// on A and one on B; each node's stream list counts the 3 viewers from both
// nodes, gives how far back the stream can be played (the oldest keyframe
// the bus holds), and follows a session's end.
func TestStreamListViewersAcrossNodes(t *testing.T) {
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
	var locations []string
	for _, node := range []string{a, a, b} {
		c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
		resp, _ := whepPlay(t, ctx, node, "cam", c)
		locations = append(locations, node+resp.Header.Get("Location"))
		c.waitPackets(t, ctx, mimeH264, 5)
	}

	viewers := func(node string) (int, player.StreamView) {
		status, v := streamView(t, ctx, node+"/streams/cam")
		if status != http.StatusOK {
			t.Fatalf("GET %s/streams/cam = %d", node, status)
		}
		if v.Viewers == nil {
			return -1, v
		}
		return *v.Viewers, v
	}
	for _, node := range []string{a, b} {
		// A node reuses its count for 2 s: wait for one made after the
		// third session.
		var v player.StreamView
		whepWait(t, ctx, "3 viewers from 2 nodes at "+node, func() bool {
			var n int
			n, v = viewers(node)
			return n == 3 && v.ViewerNodes == 2
		})
		if v.DVRFrom == nil || v.DVRSeconds <= 0 || v.DVRSeconds > whepTestTimeout.Seconds() || v.Health != "ok" {
			t.Fatalf("%s: DVR from %v (%v s), health %q; want the oldest keyframe, seconds ago, and ok", node, v.DVRFrom, v.DVRSeconds, v.Health)
		}
		if d := v.Now.Sub(*v.DVRFrom).Seconds(); d != v.DVRSeconds {
			t.Fatalf("%s: dvr_seconds %v, want now - dvr_from = %v", node, v.DVRSeconds, d)
		}
	}
	// The list of B has the same count.
	resp, body := whepDo(t, ctx, http.MethodGet, b+"/streams", nil, "")
	var list []player.StreamView
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != http.StatusOK || len(list) != 1 ||
		list[0].Viewers == nil || *list[0].Viewers != 3 {
		t.Fatalf("GET /streams of B = %d %s (%v)", resp.StatusCode, body, err)
	}

	// One session of A ends: both lists follow within their 2 s reuse.
	if r, body := whepDo(t, ctx, http.MethodDelete, locations[0], nil, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d %q", r.StatusCode, body)
	}
	ended := time.Now()
	for _, node := range []string{a, b} {
		whepWait(t, ctx, "2 viewers at "+node, func() bool { n, _ := viewers(node); return n == 2 })
	}
	if d := time.Since(ended); d > 2*player.DefaultViewerCountMaxAge+time.Second {
		t.Fatalf("the lists took %v to see the session's end", d)
	}
	if status, _ := streamView(t, ctx, a+"/streams/none"); status != http.StatusNotFound {
		t.Fatalf("GET /streams/none = %d, want 404", status)
	}
}
