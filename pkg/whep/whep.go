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
//	POST    /whep/{stream}/{session}/events       201, Location of a new event stream
//	GET     /whep/{stream}/{session}/events       an event stream of every event (this request's own)
//	GET     /whep/{stream}/{session}/events/{id}  the event stream, text/event-stream
//	DELETE  /whep/{stream}/{session}/events/{id}  200; the event stream is gone
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
// Accept-Patch: application/trickle-ice-sdpfrag, one Link rel="ice-server"
// per Config.ICEServers entry (with username, credential and
// credential-type="password" for TURN), and the Link of the server-sent
// events extension (below). Only the 201 carries the extension's Link. All sessions share one UDP port
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
// # Server-sent events
//
// The 201 announces the WHEP server-sent events extension
// (draft-ietf-wish-whep, "Server Sent Events extension"):
//
//	Link: </whep/{stream}/{session}/events>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="active,inactive,reconnect,viewercount"
//
// A POST to that entry point, with no body or an application/json array of
// event names (names this server does not send, such as "layers", are
// ignored; [] is every event), creates an event stream: 201 with its
// Location, /whep/{stream}/{session}/events/{id}. A GET of the Location is
// the stream (text/event-stream): each event is an "event:" line and one
// "data:" line of JSON, and a ": keep-alive" comment comes after 15 s
// without events. Events are queued between GETs (the latest of each kind:
// active and inactive count as one) and a new GET takes the stream over from
// the one before (which ends). DELETE of the Location ends the stream (404
// afterwards); the streams of a session end with it (the last events queued
// are still sent). A GET of the entry point itself is a stream of every
// event that lasts as long as that request, for players that only have
// EventSource. A session has at most 4 event streams: one more ends the
// oldest. POST and DELETE need the bearer token like PATCH; the GET of an
// event stream does not (EventSource cannot send it): its URL, 128 random
// bits given to a client that showed the token, is the credential. CORS is
// as for the other resources.
//
// The events:
//
//	active       {}  the session's stream plays: it is live in the catalog and, once
//	                 the session is connected, its packets flow (first event when so)
//	inactive     {}  the stream ended or its packets stopped for 3 s (sampled every second)
//	viewercount  {"viewercount":N}  N sessions of the stream on the node that owns
//	                 this session (the catalog has no viewer counts: with several
//	                 nodes it is a per-node count); sent first, then on change
//	reconnect    {"url":"/whep/{stream}"}  the node drains: POST a new offer to url (a
//	                 path, resolved against the event stream's URL), then DELETE this session
//
// Any node serves these resources: for a session of another node, the
// operations go over NATS to the owner, on whepcast.node.NODE.events, as
// JSON requests (create, delete, and poll: the owner answers when it has
// events or after the keep-alive interval, without holding a goroutine).
// The owner's errors are relayed. When the owner does not answer, the
// stream ends (404 for a new request). A relayed reader that is between two
// polls when its session closes misses the last queued events.
//
// # Draining
//
// Drain makes POSTs 503 (Retry-After: 2), wakes held POSTs with that answer
// and sends reconnect to every event stream (and to those opened later).
// Sessions, PATCH, DELETE and the event streams go on. With
// Config.DrainTimeout (config --drain-timeout), the sessions still open when
// it has passed are closed (reason drain_timeout); 0 keeps them until Close.
// Drained is closed once no session is left. A node (package node) on
// shutdown drains, waits for Drained (at most DrainTimeout + 5 s), then
// closes.
//
// # Lifecycle
//
// A session's viewer starts (Viewer.Start) when its PeerConnection is
// connected. ICE failure (nothing heard for Config.ICEFailedTimeout), a
// closed PeerConnection, no connection within Config.ConnectTimeout, DELETE,
// the viewer ending (stream ended, tracks changed), DrainTimeout after Drain
// and Close each close the PeerConnection and then the viewer, release the
// session's slot and end its event streams.
//
// # Metrics
//
// With Deps.Registerer: whepcast_whep_sessions and _held_requests (gauges),
// _requests_total{method,code}, _sessions_created_total{stream},
// _sessions_closed_total{reason}, _sessions_failed_total{reason} (closed
// without ever connecting), _time_to_first_frame_seconds{stream} (from the
// accepted POST to the first RTP packet sent), and the relay counters of the
// node's sessions per stream and kind: _bytes_out_total, _packets_out_total,
// _frames_out_total, _frames_dropped_total, _packets_nacked_total, _retransmits_total,
// _nack_missed_total, _plis_total, _firs_total, _write_errors_total.
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
