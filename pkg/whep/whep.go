// Package whep is whepcast's WHEP playback server (WebRTC-HTTP Egress
// Protocol, draft-ietf-wish-whep): it answers a player's SDP offer for a live
// stream with a sendonly PeerConnection (pion/webrtc v4) whose media comes
// from a Media (pkg/relay in production), and serves the session's trickle
// ICE, ICE restart, DELETE and server-sent events. Any node on the NATS bus
// answers for any session: a request for another node's session is forwarded
// to the node that owns it.
//
// A request gets one status, chosen from its error: a client's fault is a
// 4xx, only a fault of the server (or of the owning node) a 5xx. A POST for a
// stream that is not live is held, bounded in number and time. Every session
// ends (ICE failure, no connection in time, DELETE, its stream ending, the
// drain timeout, Close) with its PeerConnection, viewer, slot and event
// streams released. Shutdown stops taking sessions, sends the players
// elsewhere and waits for their sessions to end; Close ends them now. The
// resources, headers and events are specified in docs/whep.md, the metrics
// in docs/operations.md.
package whep

import (
	"time"

	"github.com/whepcast/whepcast/pkg/relay"
)

// MaxOfferSize is the largest POST or PATCH body read (413 beyond).
const MaxOfferSize = 128 << 10

// Media types.
const (
	mediaTypeSDP = "application/sdp"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultICEUDPAddr     = ":8189"
	DefaultWaitTimeout    = 30 * time.Second
	DefaultStart          = relay.StartGOP
	DefaultAllowOrigin    = "*"
	DefaultConnectTimeout = 30 * time.Second
	DefaultGatherTimeout  = 10 * time.Second
	DefaultForwardTimeout = 10 * time.Second
	DefaultBodyTimeout    = 10 * time.Second

	DefaultICEDisconnectedTimeout = 5 * time.Second
	DefaultICEFailedTimeout       = 25 * time.Second
	// iceKeepalive is the interval of ICE keepalives (consent checks).
	iceKeepalive = 2 * time.Second
)

// Defaults for the Config fields whose zero value means something (New
// keeps a zero): the values an operator gets when they set nothing.
const (
	// DefaultMaxWaiting is the default Config.MaxWaiting.
	DefaultMaxWaiting = 1000
	// DefaultDrainTimeout is the default Config.DrainTimeout.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultUDPGSO is the default Config.UDPGSO.
	DefaultUDPGSO = true
	// DefaultDirectSRTP is the default Config.DirectSRTP.
	DefaultDirectSRTP = true
)

// Retry-After values, in seconds.
const (
	retryNotLive  = 5
	retryOverload = 5
	retryDraining = 2
)

// forwardSubjectPrefix starts the NATS subject of a node's session requests:
// whepcast.node.NODE.session.
const forwardSubjectPrefix = "whepcast.node."
