package whip

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
)

// TestRefusesAPionSimulcastOffer: the offer of a pion publisher sending H.264
// in two simulcast layers (rids "h" and "l") and Opus is refused with 400
// naming simulcast, before any resource or publication exists.
func TestRefusesAPionSimulcastOffer(t *testing.T) {
	s := newTestServer(t, nil)
	pc, err := piontest.API(t, nil).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	high, err := webrtc.NewTrackLocalStaticRTP(h264, "video", "cam", webrtc.WithRTPStreamID("h"))
	if err != nil {
		t.Fatal(err)
	}
	low, err := webrtc.NewTrackLocalStaticRTP(h264, "video", "cam", webrtc.WithRTPStreamID("l"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := pc.AddTransceiverFromTrack(high, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Sender().AddEncoding(low); err != nil {
		t.Fatal(err)
	}
	opus, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(opus, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer := piontest.Offer(t, pc)
	for _, line := range []string{"a=rid:h send", "a=rid:l send", "a=simulcast:send h;l"} {
		if !strings.Contains(offer, line+"\r\n") {
			t.Fatalf("pion's offer lacks %q:\n%s", line, offer)
		}
	}

	resp, body := request(t, http.MethodPost, s.url+"/whip/cam1", "application/sdp", "", []byte(offer))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST of a simulcast offer: %d %q, want 400", resp.StatusCode, body)
	}
	if want := "simulcast not supported: send one layer (video section 1 has a=rid)"; strings.TrimSpace(body) != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	if resp.Header.Get("Location") != "" {
		t.Fatalf("a refusal with Location %q", resp.Header.Get("Location"))
	}
	if n := s.h.Publishers(); n != 0 {
		t.Fatalf("%d resources after the refusal", n)
	}
}
