package whep

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/fmtp"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// offer is a parsed SDP offer and what the client can receive.
type offer struct {
	sdp string
	// ufrag and pwd are the client's ICE credentials (session level, or
	// else those of the first section that has them).
	ufrag, pwd string
	// video and audio are the first section of each kind the client can
	// receive (recvonly or sendrecv, port not 0), nil when none.
	video, audio *offerSection
}

// offerSection is one audio or video section of an offer.
type offerSection struct {
	mid string
	// codecs are the rtpmap encoding names, lower case.
	codecs []string
	// h264Mode1 is set when an H264 format has packetization-mode=1.
	h264Mode1 bool
	// h265 are the profile-id and tier-flag of the H265 formats
	// (defaults 1 and 0, RFC 7798), "profile-id/tier-flag".
	h265 []string
}

// parseOffer checks the SDP offer b. Errors wrap errBadOffer (400) or
// errNotPlayable (422, no section the client can receive).
func parseOffer(b []byte) (*offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media section", errBadOffer)
	}
	_, sessionFP := sd.Attribute("fingerprint")
	sessionUfrag, _ := sd.Attribute("ice-ufrag")
	o := &offer{}
	rewritten := false
	sectionOf := make(map[string]int, len(sd.MediaDescriptions)) // mid → section number
	for i, md := range sd.MediaDescriptions {
		mid, ok := md.Attribute("mid")
		if !ok || mid == "" {
			return nil, fmt.Errorf("%w: media section %d has no a=mid", errBadOffer, i+1)
		}
		if j, dup := sectionOf[mid]; dup {
			return nil, fmt.Errorf("%w: media sections %d and %d have the same a=mid:%s (each must be unique)", errBadOffer, j, i+1, mid)
		}
		sectionOf[mid] = i + 1
		if _, ok := md.Attribute("fingerprint"); !ok && !sessionFP {
			return nil, fmt.Errorf("%w: no a=fingerprint for media section %d", errBadOffer, i+1)
		}
		if u, _ := md.Attribute("ice-ufrag"); u == "" && sessionUfrag == "" {
			return nil, fmt.Errorf("%w: no a=ice-ufrag for media section %d", errBadOffer, i+1)
		}
		kind := md.MediaName.Media
		if kind != "audio" && kind != "video" || md.MediaName.Port.Value == 0 {
			continue
		}
		switch direction(&sd, md) {
		case "recvonly":
		case "sendrecv":
			// The server never receives: present the section as recvonly
			// so that the answer is sendonly.
			setRecvonly(md)
			rewritten = true
		default:
			continue
		}
		s := section(mid, md)
		if kind == "video" && o.video == nil {
			o.video = s
		}
		if kind == "audio" && o.audio == nil {
			o.audio = s
		}
	}
	if o.video == nil && o.audio == nil {
		return nil, fmt.Errorf("%w: the offer has no audio or video section to receive (recvonly or sendrecv)", errNotPlayable)
	}
	o.ufrag, o.pwd = iceCredentials(&sd)
	o.sdp = string(b)
	if rewritten {
		out, err := sd.Marshal()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadOffer, err)
		}
		o.sdp = string(out)
	}
	return o, nil
}

// setRecvonly replaces the section's direction with recvonly.
func setRecvonly(md *sdp.MediaDescription) {
	attrs := md.Attributes[:0]
	for _, a := range md.Attributes {
		if a.Key != "sendrecv" {
			attrs = append(attrs, a)
		}
	}
	md.Attributes = append(attrs, sdp.Attribute{Key: "recvonly"})
}

func direction(sd *sdp.SessionDescription, md *sdp.MediaDescription) string {
	for _, d := range []string{"sendrecv", "recvonly", "sendonly", "inactive"} {
		if _, ok := md.Attribute(d); ok {
			return d
		}
	}
	for _, d := range []string{"sendrecv", "recvonly", "sendonly", "inactive"} {
		if _, ok := sd.Attribute(d); ok {
			return d
		}
	}
	return "sendrecv"
}

func section(mid string, md *sdp.MediaDescription) *offerSection {
	s := &offerSection{mid: mid}
	h264 := map[string]bool{}
	h265 := map[string]string{} // payload type → its fmtp
	for _, a := range md.Attributes {
		pt, rest, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			name, _, _ := strings.Cut(rest, "/")
			name = strings.ToLower(name)
			s.codecs = append(s.codecs, name)
			switch name {
			case "h264":
				h264[pt] = true
			case "h265":
				h265[pt] = ""
			}
		}
	}
	for _, a := range md.Attributes {
		pt, rest, _ := strings.Cut(a.Value, " ")
		if a.Key != "fmtp" {
			continue
		}
		if h264[pt] && fmtp.Param(rest, "packetization-mode") == "1" {
			s.h264Mode1 = true
		}
		if _, ok := h265[pt]; ok {
			h265[pt] = rest
		}
	}
	for _, params := range h265 {
		s.h265 = append(s.h265, cmp.Or(fmtp.Param(params, "profile-id"), "1")+"/"+cmp.Or(fmtp.Param(params, "tier-flag"), "0"))
	}
	return s
}

// acceptsH265 reports whether the section has an H265 format for t: same
// profile-id and tier-flag (any, when t's are not known yet).
func (s *offerSection) acceptsH265(t *tsframes.Track) bool {
	if t.ProfileID == 0 {
		return len(s.h265) > 0
	}
	return slices.Contains(s.h265, strconv.Itoa(t.ProfileID)+"/"+strconv.Itoa(t.TierFlag))
}

func (s *offerSection) has(codec string) bool {
	for _, c := range s.codecs {
		if c == codec {
			return true
		}
	}
	return false
}

// plan chooses the tracks of a session: the video (H.265 when the stream
// has it and the offer accepts it with the track's profile, else H.264) and
// the Opus audio of the stream ann, for the kinds the offer o can receive.
// When there is nothing to send it returns an error wrapping errNotPlayable
// that says why, kind by kind.
func plan(o *offer, ann bus.Announcement) (relay.Want, error) {
	video, audio := streamCodecs(ann)
	h264, h265 := relay.VideoTracks(ann)
	var want relay.Want
	// why lists the offered kinds that cannot be played, then the kinds
	// the stream has but the offer lacks.
	var why, notOffered []string
	switch {
	case o.video == nil:
		if video != "" {
			notOffered = append(notOffered, fmt.Sprintf("video (%s) was not offered", video))
		}
	case video == "":
		why = append(why, "the stream has no video")
	case h265 != nil && o.video.acceptsH265(h265):
		want.Video, want.VideoCodec = true, tsframes.CodecH265
	case h264 == nil && h265 != nil:
		why = append(why, fmt.Sprintf("video is H265 (profile-id=%d, tier-flag=%d), which the offer's video section does not accept, and the stream has no H264 rendition",
			h265.ProfileID, h265.TierFlag))
	case h264 == nil:
		why = append(why, fmt.Sprintf("video is %s, which WebRTC cannot carry", video))
	case !o.video.has("h264") || !o.video.h264Mode1:
		why = append(why, "the offer's video section does not accept H264 with packetization-mode=1")
	default:
		want.Video, want.VideoCodec = true, tsframes.CodecH264
	}
	switch {
	case o.audio == nil:
		if audio != "" {
			notOffered = append(notOffered, fmt.Sprintf("audio (%s) was not offered", audio))
		}
	case audio == "":
		why = append(why, "the stream has no audio")
	case audio != string(tsframes.CodecOpus):
		why = append(why, fmt.Sprintf("audio is %s, which WebRTC cannot carry", audio))
	case !o.audio.has("opus"):
		why = append(why, "the offer's audio section does not accept opus")
	default:
		want.Audio = true
	}
	if !want.Video && !want.Audio {
		return want, fmt.Errorf("%w: stream %q: %s", errNotPlayable, ann.Stream, strings.Join(append(why, notOffered...), "; "))
	}
	return want, nil
}

// streamCodecs returns the codec of the stream's video and audio: the track
// the bus carries (H264, Opus) or else the first track of the kind, "" when
// the stream has none.
func streamCodecs(ann bus.Announcement) (video, audio string) {
	for _, t := range ann.Tracks {
		switch {
		case ann.Video != 0 && t.PID == ann.Video:
			video = string(t.Codec)
		case ann.Audio != 0 && t.PID == ann.Audio:
			audio = string(t.Codec)
		}
	}
	for _, t := range ann.Tracks {
		switch {
		case t.Kind == tsframes.KindVideo && video == "":
			video = string(t.Codec)
		case t.Kind == tsframes.KindAudio && audio == "":
			audio = string(t.Codec)
		}
	}
	return video, audio
}
