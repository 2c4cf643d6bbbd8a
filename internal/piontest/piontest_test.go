package piontest

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestOfferIsLoopbackRecvOnly(t *testing.T) {
	pc := RecvOnly(t, nil, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	defer pc.Close()
	sdp := Offer(t, pc)
	if strings.Count(sdp, "a=recvonly") != 2 || !strings.Contains(sdp, "m=video") || !strings.Contains(sdp, "m=audio") {
		t.Fatalf("offer is not video + audio recvonly:\n%s", sdp)
	}
	var cands int
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			cands++
			if !strings.Contains(l, " udp ") || !strings.Contains(l, " 127.0.0.1 ") {
				t.Errorf("candidate not UDP on 127.0.0.1: %s", l)
			}
		}
	}
	if cands == 0 {
		t.Fatalf("offer without candidates:\n%s", sdp)
	}
}

func TestTuneIsApplied(t *testing.T) {
	tuned := false
	pc := RecvOnly(t, func(*webrtc.SettingEngine) { tuned = true }, webrtc.RTPCodecTypeVideo)
	defer pc.Close()
	if !tuned {
		t.Fatal("tune not called")
	}
}
