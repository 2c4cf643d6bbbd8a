// Package whep is the WHEP (WebRTC-HTTP Egress Protocol, draft-ietf-wish-whep)
// playback server of whepcast: the HTTP resources, the session registry, the
// PeerConnection of every viewer (pion/webrtc v4), ICE, and the forwarding of
// session requests between the nodes that share a NATS bus. The media of a
// session (tracks, RTP, RTCP) comes from a Media, pkg/relay in production.
//
// # Resources
//
// Handler serves, under /whep/:
//
//	POST    /whep/{stream}              SDP offer → 201 + SDP answer
//	OPTIONS /whep/{stream}              204, Accept-Post: application/sdp (CORS preflight too)
//	PATCH   /whep/{stream}/{session}    trickle ICE (204) or ICE restart (200 + sdpfrag)
//	DELETE  /whep/{stream}/{session}    200; the session is gone (404 afterwards)
//	OPTIONS /whep/{stream}/{session}    204, Accept-Patch: application/trickle-ice-sdpfrag
//
// Any other method on these paths is answered 405 with Allow. SessionsHandler
// serves the JSON list of this node's sessions (GET /sessions in whep-node).
//
// # POST
//
// Checks run in this order, each answered at once: bearer token (401 with
// WWW-Authenticate: Bearer), stream name (400; nothing is subscribed for a bad
// name), Content-Type application/sdp (415), draining (503), body at most
// MaxOfferSize (413, read under a deadline), SDP syntax (400), an offer with
// at least one audio or video section the client can receive (422).
//
// A stream that is not live holds the request (Catalog.Wait) until it is live,
// the client goes away, or Config.WaitTimeout passes (409 + Retry-After). At
// most Config.MaxWaiting requests are held (503 + Retry-After beyond); with
// MaxWaiting 0 nothing is held and a stream that is not live is answered 409
// at once. Config.MaxSessions and MaxSessionsPerStream bound the sessions
// (503 + Retry-After).
//
// Tracks are chosen from the stream's announcement: H.264 for an offered
// video section that lists H264 (packetization-mode 1), Opus for an offered
// audio section that lists opus. An offered kind without a source is answered
// inactive, or rejected (port 0) when the stream's codecs have nothing for
// it; a second section of a kind is answered inactive. The answer is always
// sendonly (a sendrecv offer is answered as if recvonly). When no offered
// kind can be served the answer is 422 with a message that names the
// stream's codecs, e.g. "audio is AAC, which WebRTC cannot carry".
//
// The 201 carries the SDP answer with every server candidate (the server
// does not trickle; they sit in the bundle's first accepted section),
// Location: /whep/{stream}/{session}, a strong ETag,
// Accept-Patch: application/trickle-ice-sdpfrag and one Link rel="ice-server"
// per Config.ICEServers entry (with username, credential and
// credential-type="password" for TURN). All sessions share one UDP port
// (ICEUDPAddr) and, when set, one ICE-TCP listener (ICETCPAddr); PublicIPs
// replace the host candidates' addresses (NAT 1:1).
//
// # PATCH and If-Match
//
// The body is application/trickle-ice-sdpfrag (415 otherwise, 400 when
// malformed, 413 beyond sdpfrag.MaxSize). Credentials equal to the client's
// current ones (or none) make it a trickle: candidates are added, unusable
// ones (other generation, unresolvable mDNS names, unsupported transports)
// are ignored, and the answer is 204 without a body or ETag. New credentials
// make it an ICE restart: 200 with an sdpfrag of the server's new ufrag, pwd
// and candidates, and a new ETag. Credentials are checked before the restart
// begins, so a rejected restart leaves the old ICE session as it was.
//
// If-Match, when present, must be "*" or list the session's current ETag
// (strong comparison), otherwise 412. A missing If-Match is 428 for an ICE
// restart, as the draft requires, but is accepted for a plain trickle: the
// medooze whip-whep client sends its trickle PATCHes without one, and a
// trickle cannot harm a session the way a restart can. A fragment section
// whose kind is not audio or video, or whose mid is not in the session, is
// 422. If-Match on DELETE is ignored.
//
// # Nodes and forwarding
//
// A session id is NODE.RANDOM: the owning node's id and 128 bits from
// crypto/rand. Every node with a NATS connection subscribes to
// "whepcast.node.NODE.session"; a PATCH or DELETE that reaches another node
// (round-robin load balancing, no sticky routing) is sent there as a JSON
// request (method, stream, session, Content-Type, If-Match, body) and the
// owner's status, headers and body are relayed back. A session of a node that
// does not answer (no responders) is gone: 404. The token is checked by the
// node that receives the HTTP request.
//
// # Lifecycle
//
// A session's viewer starts (Viewer.Start) when its PeerConnection is
// connected. ICE failure (nothing heard for Config.ICEFailedTimeout), a
// closed PeerConnection, no connection within Config.ConnectTimeout, DELETE,
// the viewer ending (stream ended, tracks changed) and Close each close the
// PeerConnection and then the viewer and release the session's slot. Drain
// makes POSTs 503 and wakes held POSTs with 503; existing sessions go on
// until Close.
//
// # Metrics
//
// With Deps.Registerer: whepcast_whep_sessions and _held_requests (gauges),
// _requests_total{method,code}, _sessions_created_total{stream},
// _sessions_closed_total{reason}, _sessions_failed_total{reason} (closed
// without ever connecting), _time_to_first_frame_seconds{stream} (from the
// accepted POST to the first RTP packet sent), and the relay counters of the
// node's sessions per stream and kind: _bytes_out_total, _packets_out_total,
// _frames_out_total, _drops_total, _nacks_total, _retransmits_total,
// _nack_missed_total, _plis_total, _firs_total, _write_errors_total.
package whep

import "time"

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
	DefaultStart          = "gop"
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

// Retry-After values, in seconds.
const (
	retryNotLive  = 5
	retryOverload = 5
	retryDraining = 2
)

// forwardSubjectPrefix starts the NATS subject of a node's session requests:
// whepcast.node.NODE.session.
const forwardSubjectPrefix = "whepcast.node."
