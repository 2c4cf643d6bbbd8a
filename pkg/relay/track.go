package relay

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/fmtp"
)

// binding is what a PeerConnection told a track when it bound it.
type binding struct {
	id          string
	ssrc        uint32
	payloadType uint8
	// rtxSSRC and rtxPayloadType are those of the track's RTX stream
	// (RFC 4588) when the peer negotiated RTX for its codec; rtxSSRC is 0
	// otherwise.
	rtxSSRC        uint32
	rtxPayloadType uint8
	writer         webrtc.TrackLocalWriter
}

// track is the webrtc.TrackLocal of one viewer and one kind. It does not
// packetize: the viewer's writer sends the stream's shared packets to the
// bound WriteStream with the binding's SSRC and payload type.
type track struct {
	kind     webrtc.RTPCodecType
	codec    webrtc.RTPCodecCapability
	id       string
	streamID string

	mu      sync.Mutex // serializes Bind/Unbind
	current atomic.Pointer[binding]
}

func newTrack(kind webrtc.RTPCodecType, codec webrtc.RTPCodecCapability, streamID string) *track {
	return &track{kind: kind, codec: codec, id: kind.String(), streamID: streamID}
}

// Bind implements webrtc.TrackLocal: it picks the negotiated codec of the
// track's MIME type (for H.264 one with packetization-mode=1, preferring the
// same profile) and records the SSRC, payload type and WriteStream, and the
// RTX SSRC and payload type when RTX was negotiated for that codec.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := matchCodec(t.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("relay: bind %s track: %w (%s)", t.kind, ErrUnsupportedCodec, t.codec.MimeType)
	}
	b := &binding{
		id:          ctx.ID(),
		ssrc:        uint32(ctx.SSRC()),
		payloadType: uint8(c.PayloadType),
		writer:      ctx.WriteStream(),
	}
	if ssrc := ctx.SSRCRetransmission(); ssrc != 0 {
		if pt, ok := rtxPayloadType(c.PayloadType, ctx.CodecParameters()); ok {
			b.rtxSSRC, b.rtxPayloadType = uint32(ssrc), uint8(pt)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.current.Store(b)
	return c, nil
}

// Unbind implements webrtc.TrackLocal.
func (t *track) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.current.Load(); b != nil && b.id == ctx.ID() {
		t.current.Store(nil)
	}
	return nil
}

// ID implements webrtc.TrackLocal ("video" or "audio").
func (t *track) ID() string { return t.id }

// RID implements webrtc.TrackLocal (no simulcast).
func (t *track) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the stream name.
func (t *track) StreamID() string { return t.streamID }

// Kind implements webrtc.TrackLocal.
func (t *track) Kind() webrtc.RTPCodecType { return t.kind }

// matchCodec returns the codec of want's MIME type and clock rate in
// negotiated; for H.264 only packetization-mode=1 qualifies, and one with
// want's profile (first two bytes of profile-level-id) is preferred.
func matchCodec(want webrtc.RTPCodecCapability, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	wantProfile := fmtp.Param(want.SDPFmtpLine, "profile-level-id")
	for i := range negotiated {
		c := &negotiated[i]
		if !strings.EqualFold(c.MimeType, want.MimeType) || c.ClockRate != want.ClockRate {
			continue
		}
		if !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) {
			return *c, true
		}
		if fmtp.Param(c.SDPFmtpLine, "packetization-mode") != "1" {
			continue
		}
		p := fmtp.Param(c.SDPFmtpLine, "profile-level-id")
		if len(p) >= 4 && len(wantProfile) >= 4 && strings.EqualFold(p[:4], wantProfile[:4]) {
			return *c, true
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// rtxPayloadType returns the payload type of the RTX codec in negotiated
// whose apt is apt.
func rtxPayloadType(apt webrtc.PayloadType, negotiated []webrtc.RTPCodecParameters) (webrtc.PayloadType, bool) {
	want := strconv.Itoa(int(apt))
	for _, c := range negotiated {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && fmtp.Param(c.SDPFmtpLine, "apt") == want {
			return c.PayloadType, true
		}
	}
	return 0, false
}
