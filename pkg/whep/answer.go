package whep

import (
	"fmt"

	"github.com/pion/sdp/v3"
)

// bundleTag returns the section that carries the bundle's transport: the
// first one not rejected (port 0), or nil.
func bundleTag(sd *sdp.SessionDescription) *sdp.MediaDescription {
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value != 0 {
			return md
		}
	}
	return nil
}

// moveCandidates returns the answer sd (parsed from answer) with its
// candidates (and end-of-candidates) in the bundle's first accepted
// section. pion writes them into the first section even when that one is
// rejected, where a browser ignores them. sd is modified.
func moveCandidates(sd *sdp.SessionDescription, answer string) (string, error) {
	tag := bundleTag(sd)
	if tag == nil {
		return answer, nil
	}
	var moved []sdp.Attribute
	for _, md := range sd.MediaDescriptions {
		if md == tag || md.MediaName.Port.Value != 0 {
			continue
		}
		kept := md.Attributes[:0]
		for _, a := range md.Attributes {
			if a.Key == "candidate" || a.Key == "end-of-candidates" {
				moved = append(moved, a)
				continue
			}
			kept = append(kept, a)
		}
		md.Attributes = kept
	}
	if len(moved) == 0 {
		return answer, nil
	}
	tag.Attributes = append(tag.Attributes, moved...)
	b, err := sd.Marshal()
	if err != nil {
		return "", fmt.Errorf("local answer: %w", err)
	}
	return string(b), nil
}
