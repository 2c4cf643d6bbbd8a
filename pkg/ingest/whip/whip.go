// Package whip receives WHIP publishers (RFC 9725: OBS 30+, browsers) and
// publishes their H.264 and Opus through ingest.Publications, as the
// MPEG-TS, SRT and RTMP ingests do: same name validation, admission,
// takeover, tokens and idle timeout, with "whip" as the source kind.
//
// POST /whip/{stream} with an SDP offer creates a publication and answers
// 201 with the SDP answer and its Location; PATCH of the Location trickles
// candidates or restarts ICE, DELETE ends the publication. RTP is
// reordered (NACK toward the publisher), depacketized into access units
// and put on one 90 kHz timeline (RTCP sender reports); the publisher is
// asked for keyframes (PLI) until the first one, after a loss breaks a GOP
// and when viewers ask (Config.KeyframeRequests). Simulcast offers are
// refused. The PeerConnections may share one UDP port (ListenICEUDP).
package whip

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// PathPrefix is the path under which Handler serves: /whip/{stream} and
// the resources /whip/{stream}/{id}.
const PathPrefix = "/whip/"

// Limits on untrusted input.
const (
	// MaxOfferSize is the largest SDP offer accepted.
	MaxOfferSize = 64 << 10
	// maxAccessUnitSize bounds an access unit and a NAL unit.
	maxAccessUnitSize = h264.MaxAccessUnitSize
	// maxNALUsPerAccessUnit bounds the NAL units of an access unit.
	maxNALUsPerAccessUnit = 256
)
