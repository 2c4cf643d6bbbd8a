package whep

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// An offer whose first section is rejected (Firefox without H.264: video
// with VP8 only, then audio) bundles on the audio section: its candidates,
// not only the rejected section's, are the ones the server must check.
func TestRejectedFirstSectionUsesBundleCandidates(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	offer := fixedOffer("vp8", "audio")
	video, audio, _ := strings.Cut(offer, "m=audio ")
	offer = video + "a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"m=audio " + audio + "a=candidate:2 1 udp 2130706431 127.0.0.1 40002 typ host\r\n"
	resp, body := ts.post(t, ctx, "cam", offer, nil)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(body, "a=group:BUNDLE 1\r\n") {
		t.Fatalf("POST answered %d:\n%s", resp.StatusCode, body)
	}
	list := ts.srv.sessions.list()
	if len(list) != 1 {
		t.Fatalf("%d sessions, want 1", len(list))
	}
	// pion's ICE agent adds a remote candidate in its own goroutine.
	waitFor(t, ctx, "the audio section's candidate (port 40002) on the server", func() bool {
		for _, s := range list[0].pc.GetStats() {
			if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate && c.Port == 40002 {
				return true
			}
		}
		return false
	})
}
