package relay

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Payload types offered when whepcast is the offerer; as answerer the
// offer's payload types are used.
const (
	payloadTypeH264    = 96
	payloadTypeH264RTX = 97
	payloadTypeOpus    = 111
)

// Clock rates of the RTP streams.
const (
	videoClockRate = 90000
	audioClockRate = 48000
)

// defaultProfileLevelID is used when the announcement has none (constrained
// baseline, level 3.1).
const defaultProfileLevelID = "42e01f"

// trackSet is what a stream sends over WebRTC: the comparison key of
// "same tracks" across announcements and epochs.
type trackSet struct {
	video bool
	// profile is the normalized profile-level-id of the video track
	// (6 lowercase hex digits; "" when the announcement had none yet).
	profile string
	audio   bool
}

// trackSetOf returns the WebRTC tracks of ann: the bus carries at most one
// H.264 track (ann.Video) and one Opus track (ann.Audio).
func trackSetOf(ann bus.Announcement) trackSet {
	var s trackSet
	for _, t := range ann.Tracks {
		switch {
		case ann.Video != 0 && t.PID == ann.Video && t.Codec == tsframes.CodecH264:
			s.video = true
			s.profile = normalizeProfileLevelID(t.ProfileLevelID)
		case ann.Audio != 0 && t.PID == ann.Audio && t.Codec == tsframes.CodecOpus:
			s.audio = true
		}
	}
	return s
}

// sameAs reports whether a viewer negotiated for s can keep playing a
// stream that now sends o: same kinds, and the same H.264 profile (profile_idc
// and constraint flags; the level may differ, and an unknown profile matches
// any).
func (s trackSet) sameAs(o trackSet) bool {
	if s.video != o.video || s.audio != o.audio {
		return false
	}
	if s.profile == "" || o.profile == "" {
		return true
	}
	return s.profile[:4] == o.profile[:4]
}

func (s trackSet) String() string {
	var parts []string
	if s.video {
		p := s.profile
		if p == "" {
			p = "unknown"
		}
		parts = append(parts, "H264/"+p)
	}
	if s.audio {
		parts = append(parts, "Opus")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// normalizeProfileLevelID turns an SPS-derived profile-level-id into the one
// to negotiate: browsers offer 42e0xx (constrained baseline), 4d00xx (main)
// and 6400xx (high), and pion matches profile_idc and the constraint byte
// exactly. An SPS that sets constraint_set1 on baseline is constrained
// baseline (42e0); other constraint flags do not change what a decoder must
// support and are cleared. It returns "" for an empty or malformed value.
func normalizeProfileLevelID(plid string) string {
	b, err := hex.DecodeString(plid)
	if err != nil || len(b) != 3 {
		return ""
	}
	profile, constraints, level := b[0], b[1], b[2]
	switch profile {
	case 0x42: // baseline
		if constraints&0x40 != 0 {
			constraints = 0xe0
		} else {
			constraints = 0x00
		}
	case 0x4d, 0x58, 0x64: // main, extended, high
		constraints = 0x00
	}
	return hex.EncodeToString([]byte{profile, constraints, level})
}

// h264Capability is the H.264 codec whepcast sends for profile-level-id
// plid ("" for the default).
func h264Capability(plid string) webrtc.RTPCodecCapability {
	if plid == "" {
		plid = defaultProfileLevelID
	}
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   videoClockRate,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: webrtc.TypeRTCPFBNACK},
			{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
			{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		},
	}
}

// opusCapability is the Opus codec whepcast sends.
func opusCapability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeOpus,
		ClockRate:   audioClockRate,
		Channels:    2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
}

// rtxCapability is the RTX (RFC 4588) codec of the H.264 codec of payload
// type apt.
func rtxCapability(apt webrtc.PayloadType) webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeRTX,
		ClockRate:   videoClockRate,
		SDPFmtpLine: fmt.Sprintf("apt=%d", apt),
	}
}

// RegisterCodecs registers in m the codecs to send for ann: H.264
// (packetization-mode=1, the stream's normalized profile-level-id, default
// 42e01f, level-asymmetry-allowed=1, NACK/PLI/FIR feedback) and its RTX
// (RFC 4588; answered when the offer has it, and then retransmissions go on
// the RTX SSRC) when the bus carries video, and Opus 48000/2
// (minptime=10;useinbandfec=1) when it carries audio. It returns an error
// wrapping ErrNoTracks when ann has neither.
func RegisterCodecs(m *webrtc.MediaEngine, ann bus.Announcement) error {
	set := trackSetOf(ann)
	if !set.video && !set.audio {
		return fmt.Errorf("relay: register codecs of %q: %w", ann.Stream, ErrNoTracks)
	}
	if set.video {
		c := webrtc.RTPCodecParameters{RTPCodecCapability: h264Capability(set.profile), PayloadType: payloadTypeH264}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("relay: register H264: %w", err)
		}
		rtx := webrtc.RTPCodecParameters{RTPCodecCapability: rtxCapability(payloadTypeH264), PayloadType: payloadTypeH264RTX}
		if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("relay: register H264 RTX: %w", err)
		}
	}
	if set.audio {
		c := webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability(), PayloadType: payloadTypeOpus}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("relay: register Opus: %w", err)
		}
	}
	return nil
}

// RegisterInterceptors registers in ir what whepcast uses: RTCP sender
// reports (so that browsers can synchronize audio and video) about the
// media SSRCs, which RTX packets do not count in. It registers no NACK
// responder: NACKs are answered by the Viewer from the stream's shared
// retransmission buffer (see Viewer.BindSenders). m is accepted for
// symmetry with pion's Configure* helpers; nothing is registered in it.
func RegisterInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return fmt.Errorf("relay: sender report interceptor: %w", err)
	}
	ir.Add(mediaOnlyFactory{sr})
	return nil
}

// mediaOnlyFactory makes interceptors that see only the packets of the
// stream they were bound to: the RTX packets a track writes through the
// same WriteStream (with the RTX SSRC) pass them by. A sender report must
// not count them, nor take their sequence numbers and old timestamps for
// the media stream's.
type mediaOnlyFactory struct{ inner interceptor.Factory }

func (f mediaOnlyFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.inner.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return mediaOnly{i}, nil
}

// mediaOnly is an interceptor whose local streams see only their own SSRC.
type mediaOnly struct{ interceptor.Interceptor }

func (m mediaOnly) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	inner := m.Interceptor.BindLocalStream(info, writer)
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != ssrc {
			return writer.Write(h, payload, a)
		}
		return inner.Write(h, payload, a)
	})
}
