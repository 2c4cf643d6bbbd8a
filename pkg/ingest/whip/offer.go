package whip

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/fmtp"
)

// codecChoice is the codec of one offered section that a publication
// receives, with the publisher's payload type.
type codecChoice struct {
	pt       uint8
	fmtp     string
	channels uint16
}

// offer is what a WHIP offer asks for: the codec received per kind (nil
// when the kind is absent or carries no codec the bus takes).
type offer struct {
	video, audio   *codecChoice
	profileLevelID string   // of the H.264 chosen, from its fmtp
	refused        []string // what the sections offered that is not taken, for the log
}

// parseOffer checks a WHIP offer and picks the codecs to receive: the first
// H.264 in packetization mode 1 of the video section and the first Opus of
// the audio section. It refuses (errBadOffer) an offer that is not SDP,
// has no audio or video section or more than one of a kind, refuses
// simulcast (ErrSimulcast), and refuses an offer without any codec the bus
// carries (ErrUnsupportedCodecs, naming what was offered).
func parseOffer(body []byte) (offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return offer{}, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	var o offer
	var offered []string
	sections := map[string]int{}
	for i, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if kind != "audio" && kind != "video" {
			continue // a data channel, say: the answer rejects it
		}
		if md.MediaName.Port.Value == 0 {
			continue // rejected by the publisher itself
		}
		if sections[kind]++; sections[kind] > 1 {
			return offer{}, fmt.Errorf("%w: more than one %s section: send one video and one audio track", errBadOffer, kind)
		}
		for _, a := range md.Attributes {
			if a.Key == "simulcast" || a.Key == "rid" {
				return offer{}, fmt.Errorf("%w (%s section %d has a=%s)", ErrSimulcast, kind, i+1, a.Key)
			}
		}
		if _, ok := md.Attribute(webrtc.RTPTransceiverDirectionRecvonly.String()); ok {
			return offer{}, fmt.Errorf("%w: the %s section is recvonly: a WHIP publisher sends", errBadOffer, kind)
		}
		names := make([]string, 0, len(md.MediaName.Formats))
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 8)
			if err != nil {
				return offer{}, fmt.Errorf("%w: %s section %d: payload type %q", errBadOffer, kind, i+1, f)
			}
			name, params := rtpmap(md, f)
			fp, _ := fmtpOf(md, f)
			switch {
			case kind == "video" && strings.EqualFold(name, "H264/90000"):
				if fmtp.Param(fp, "packetization-mode") != "1" {
					names = append(names, "H264 packetization-mode="+cmp.Or(fmtp.Param(fp, "packetization-mode"), "0"))
					continue
				}
				if o.video == nil {
					o.video = &codecChoice{pt: uint8(pt), fmtp: fp}
					o.profileLevelID = strings.ToLower(fmtp.Param(fp, "profile-level-id"))
				}
			case kind == "audio" && strings.EqualFold(name, "opus/48000"):
				if o.audio == nil {
					ch := uint16(2)
					if params == "1" {
						ch = 1
					}
					o.audio = &codecChoice{pt: uint8(pt), fmtp: fp, channels: ch}
				}
			case name == "":
				names = append(names, "payload type "+f)
			default:
				names = append(names, strings.Split(name, "/")[0])
			}
		}
		offered = append(offered, kind+": "+strings.Join(dedup(names), ", "))
	}
	if len(sections) == 0 {
		return offer{}, fmt.Errorf("%w: no audio or video section", errBadOffer)
	}
	if o.video == nil && o.audio == nil {
		return offer{}, fmt.Errorf("%w; offered: %s", ErrUnsupportedCodecs, strings.Join(offered, "; "))
	}
	if o.video == nil && sections["video"] > 0 || o.audio == nil && sections["audio"] > 0 {
		o.refused = offered
	}
	return o, nil
}

// rtpmap returns the encoding name and clock rate ("H264/90000") of payload
// type pt in md, and the encoding parameters (channels) apart; static
// payload types of RFC 3551 that browsers send without an rtpmap get
// their names.
func rtpmap(md *sdp.MediaDescription, pt string) (name, params string) {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		p, rest, ok := strings.Cut(a.Value, " ")
		if !ok || p != pt {
			continue
		}
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) >= 2 {
			name = parts[0] + "/" + parts[1]
		} else {
			name = parts[0]
		}
		if len(parts) == 3 {
			params = parts[2]
		}
		return name, params
	}
	switch pt {
	case "0":
		return "PCMU/8000", ""
	case "8":
		return "PCMA/8000", ""
	case "9":
		return "G722/8000", ""
	}
	return "", ""
}

// fmtpOf returns the fmtp parameters of payload type pt in md.
func fmtpOf(md *sdp.MediaDescription, pt string) (string, bool) {
	for _, a := range md.Attributes {
		if a.Key != "fmtp" {
			continue
		}
		if p, rest, ok := strings.Cut(a.Value, " "); ok && p == pt {
			return rest, true
		}
	}
	return "", false
}

func dedup(names []string) []string {
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return []string{"nothing"}
	}
	return out
}

// mediaEngine registers exactly the codecs o receives, with the
// publisher's payload types, so that the answer takes them.
func (o offer) mediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	if o.video != nil {
		fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: o.video.fmtp, RTCPFeedback: fb},
			PayloadType:        webrtc.PayloadType(o.video.pt),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("whip: registering H.264: %w", err)
		}
	}
	if o.audio != nil {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: o.audio.fmtp},
			PayloadType:        webrtc.PayloadType(o.audio.pt),
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("whip: registering Opus: %w", err)
		}
	}
	return m, nil
}
