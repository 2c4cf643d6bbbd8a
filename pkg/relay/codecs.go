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
	payloadTypeH265    = 98
	payloadTypeH265RTX = 99
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

// trackSet is what a stream sends over WebRTC (to one viewer, or to the
// viewers of one hub): the comparison key of "same tracks" across
// announcements and epochs.
type trackSet struct {
	video bool
	// codec is the video codec: tsframes.CodecH264 or tsframes.CodecH265
	// ("" without video).
	codec tsframes.Codec
	// profile is the normalized profile-level-id of an H.264 video track
	// (6 lowercase hex digits; "" when the announcement had none yet).
	profile string
	// h265 is the profile-id, tier-flag and level-id of an H.265 video
	// track (profile-id 0 when the announcement had none yet).
	h265  h265Profile
	audio bool
}

// h265Profile is the SDP fmtp of an H.265 track (RFC 7798): profile-id,
// tier-flag and level-id.
type h265Profile struct{ profileID, tierFlag, levelID int }

// videoTracks returns the video tracks the bus carries for ann, by codec:
// the H.264 track when ann.Video is H.264, the H.265 track when ann.Video is
// H.265 or is derived (by a transcoding stage) from an H.265 track.
func videoTracks(ann bus.Announcement) (h264, h265 *tsframes.Track) {
	if ann.Video == 0 {
		return nil, nil
	}
	v, ok := ann.Track(ann.Video)
	if !ok {
		return nil, nil
	}
	switch v.Codec {
	case tsframes.CodecH264:
		h264 = &v
		if v.DerivedFrom != 0 {
			if src, ok := ann.Track(v.DerivedFrom); ok && src.Codec == tsframes.CodecH265 {
				h265 = &src
			}
		}
	case tsframes.CodecH265:
		h265 = &v
	}
	return h264, h265
}

// VideoTracks returns the video tracks a viewer of ann can be sent, by
// codec (nil when there is none): the H.264 track the bus carries, and the
// H.265 one, which is the announcement's video track or the track that an
// H.264 rendition is derived from (docs/bus.md, "Video selection").
func VideoTracks(ann bus.Announcement) (h264, h265 *tsframes.Track) {
	return videoTracks(ann)
}

// trackSetOf returns the WebRTC tracks of ann for a viewer that takes the
// default video codec: H.264 when the bus carries it, else H.265 (see
// trackSetFor).
func trackSetOf(ann bus.Announcement) trackSet {
	return trackSetFor(ann, "")
}

// trackSetFor returns the WebRTC tracks of ann with video of codec c (""
// picks H.264 when the bus carries it, else H.265): the bus carries at most
// one Opus track (ann.Audio), one H.264 track and one H.265 track (see
// videoTracks). The set has no video when ann has none of codec c.
func trackSetFor(ann bus.Announcement, c tsframes.Codec) trackSet {
	var s trackSet
	if ann.Audio != 0 {
		if t, ok := ann.Track(ann.Audio); ok && t.Codec == tsframes.CodecOpus {
			s.audio = true
		}
	}
	h264, h265 := videoTracks(ann)
	if c == "" {
		c = tsframes.CodecH264
		if h264 == nil {
			c = tsframes.CodecH265
		}
	}
	switch {
	case c == tsframes.CodecH264 && h264 != nil:
		s.video, s.codec = true, c
		s.profile = normalizeProfileLevelID(h264.ProfileLevelID)
	case c == tsframes.CodecH265 && h265 != nil:
		s.video, s.codec = true, c
		s.h265 = h265Profile{profileID: h265.ProfileID, tierFlag: h265.TierFlag, levelID: h265.LevelID}
	}
	return s
}

// sameAs reports whether a viewer negotiated for s can keep playing a
// stream that now sends o: same kinds and video codec, and for H.264 the
// same profile (profile_idc and constraint flags; the level may differ, and
// an unknown profile matches any) or o constrained baseline, which every
// H.264 decoder decodes (a transcoding stage's rendition of a High source);
// for H.265 the same profile-id and tier-flag.
func (s trackSet) sameAs(o trackSet) bool {
	if s.video != o.video || s.audio != o.audio || s.codec != o.codec {
		return false
	}
	if s.codec == tsframes.CodecH265 {
		return s.h265.profileID == 0 || o.h265.profileID == 0 ||
			s.h265.profileID == o.h265.profileID && s.h265.tierFlag == o.h265.tierFlag
	}
	if s.profile == "" || o.profile == "" {
		return true
	}
	return s.profile[:4] == o.profile[:4] || o.profile[:4] == constrainedBaseline
}

// constrainedBaseline is the profile_idc and constraint flags of
// constrained baseline in a normalized profile-level-id.
const constrainedBaseline = "42e0"

// learn fills in what s did not know yet of o (same tracks): the H.264
// profile, the H.265 profile.
func (s *trackSet) learn(o trackSet) {
	if s.profile == "" {
		s.profile = o.profile
	}
	if s.h265.profileID == 0 {
		s.h265 = o.h265
	}
}

func (s trackSet) String() string {
	var parts []string
	switch {
	case s.video && s.codec == tsframes.CodecH265:
		p := "unknown"
		if s.h265.profileID != 0 {
			p = fmt.Sprintf("profile-id=%d,tier-flag=%d", s.h265.profileID, s.h265.tierFlag)
		}
		parts = append(parts, "H265/"+p)
	case s.video:
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

// h265Capability is the H.265 codec whepcast sends for profile p (RFC 7798
// and draft-ietf-avtcore-hevc-webrtc: profile-id, tier-flag and level-id of
// the stream, single RTP stream; Main profile, level 3.1 when p is not
// known yet), with the same feedback as H.264.
func h265Capability(p h265Profile) webrtc.RTPCodecCapability {
	if p.profileID == 0 {
		p = h265Profile{profileID: 1, levelID: 93}
	}
	return webrtc.RTPCodecCapability{
		MimeType:  webrtc.MimeTypeH265,
		ClockRate: videoClockRate,
		SDPFmtpLine: fmt.Sprintf("level-id=%d;profile-id=%d;tier-flag=%d;tx-mode=SRST",
			p.levelID, p.profileID, p.tierFlag),
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: webrtc.TypeRTCPFBNACK},
			{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
			{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		},
	}
}

// videoCapability is the video codec of s.
func videoCapability(s trackSet) webrtc.RTPCodecCapability {
	if s.codec == tsframes.CodecH265 {
		return h265Capability(s.h265)
	}
	return h264Capability(s.profile)
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

// rtxCapability is the RTX (RFC 4588) codec of the video codec of payload
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
// 42e01f, level-asymmetry-allowed=1, NACK/PLI/FIR feedback) when the bus
// carries H.264 video, H.265 (the stream's profile-id, tier-flag and
// level-id, tx-mode=SRST, the same feedback) when it carries H.265, each
// with its RTX (RFC 4588; answered when the offer has it, and then
// retransmissions go on the RTX SSRC), and Opus 48000/2
// (minptime=10;useinbandfec=1) when it carries audio. The viewer's track
// picks the one codec it sends among those negotiated. It returns an error
// wrapping ErrNoTracks when ann has no video and no audio.
func RegisterCodecs(m *webrtc.MediaEngine, ann bus.Announcement) error {
	set := trackSetOf(ann)
	if !set.video && !set.audio {
		return fmt.Errorf("relay: register codecs of %q: %w", ann.Stream, ErrNoTracks)
	}
	for _, c := range []tsframes.Codec{tsframes.CodecH264, tsframes.CodecH265} {
		vs := trackSetFor(ann, c)
		if !vs.video {
			continue
		}
		pt, rtxPT := webrtc.PayloadType(payloadTypeH264), webrtc.PayloadType(payloadTypeH264RTX)
		if c == tsframes.CodecH265 {
			pt, rtxPT = payloadTypeH265, payloadTypeH265RTX
		}
		vc := webrtc.RTPCodecParameters{RTPCodecCapability: videoCapability(vs), PayloadType: pt}
		if err := m.RegisterCodec(vc, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("relay: register %s: %w", c, err)
		}
		rtx := webrtc.RTPCodecParameters{RTPCodecCapability: rtxCapability(pt), PayloadType: rtxPT}
		if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("relay: register %s RTX: %w", c, err)
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
