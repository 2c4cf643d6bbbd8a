package whep

import (
	"fmt"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// addTagCandidates gives the ICE agent the client's candidates of the offer
// section that carries the answer's BUNDLE transport, when that is not the
// offer's first section, and returns how many it added. pion reads the
// remote candidates of one offer section only, the first; when the answer
// rejects that one (Firefox without H.264 offers video first, with VP8, VP9
// and AV1 only), the client closes its transport and keeps the accepted
// section's, which the server would otherwise never check. answer is the
// local answer, before moveCandidates.
func addTagCandidates(pc *webrtc.PeerConnection, offerSDP string, answer *sdp.SessionDescription) (int, error) {
	tag := bundleTag(answer)
	if tag == nil || len(answer.MediaDescriptions) == 0 || tag == answer.MediaDescriptions[0] {
		return 0, nil
	}
	mid, ok := tag.Attribute("mid")
	if !ok {
		return 0, nil
	}
	offer, err := parseSDP(offerSDP)
	if err != nil {
		return 0, fmt.Errorf("offer: %w", err)
	}
	added := 0
	for _, md := range offer.MediaDescriptions {
		if m, _ := md.Attribute("mid"); m != mid {
			continue
		}
		for _, a := range md.Attributes {
			if a.Key != "candidate" {
				continue
			}
			if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: "candidate:" + a.Value, SDPMid: &mid}); err != nil {
				// An unusable candidate (an mDNS name, another
				// transport) is skipped, as in a trickle PATCH.
				continue
			}
			added++
		}
	}
	return added, nil
}
