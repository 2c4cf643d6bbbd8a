package whep

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

// Config configures a Server. Zero fields get the package defaults
// (DefaultICEUDPAddr, ...), except where a zero value means something:
// MaxWaiting 0 holds no request (409 at once for a stream that is not
// live), MaxSessions and MaxSessionsPerStream 0 are unlimited, DrainTimeout
// 0 closes the sessions at once, UDPGSO false sends one packet per system
// call, DirectSRTP false leaves the media to pion's write path. Operators
// get DefaultMaxWaiting, DefaultDrainTimeout, DefaultUDPGSO and
// DefaultDirectSRTP from pkg/config.
type Config struct {
	// ICEUDPAddr is the single UDP address all sessions share.
	ICEUDPAddr string
	// ICETCPAddr enables ICE-TCP on this address when set.
	ICETCPAddr string
	// UDPGSO sends the packets of a video frame to a viewer with one
	// system call (Linux UDP segmentation offload; falls back by itself).
	UDPGSO bool
	// DirectSRTP encrypts each media packet with the session's SRTP keys
	// here and writes it straight into the UDP batch (or socket), past
	// pion's per-packet path (SRTP session, mux, candidate pair); pion
	// keeps ICE, DTLS and RTCP. When the SRTP keys cannot be had (pion's
	// internals changed) a session logs it and stays on pion's path.
	DirectSRTP bool
	// ICEDisconnectedTimeout and ICEFailedTimeout are how long a session
	// hears nothing from its client before ICE is disconnected, and then
	// failed, which closes the session.
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	// PublicIPs are announced as host candidates (NAT 1:1).
	PublicIPs []string
	// ICEServers are STUN/TURN URLs, also sent as Link rel="ice-server".
	// Credentials: turn:host:3478?username=u&credential=p
	ICEServers []string
	// Tokens are accepted as Bearer on POST/PATCH/DELETE (and the event
	// streams' POST/DELETE); none, and no TokenFile, leaves them open.
	Tokens []string
	// TokenFile holds more tokens, one per line.
	TokenFile string
	// AdminTokens are accepted as Bearer by the operator endpoints that
	// list session ids (SessionsHandler). With none, those endpoints serve
	// loopback clients only.
	AdminTokens []string
	// WaitTimeout bounds how long a POST is held for a stream that is not
	// live.
	WaitTimeout time.Duration
	// MaxWaiting bounds the number of held POSTs (503 beyond).
	MaxWaiting int
	// MaxSessions and MaxSessionsPerStream bound the sessions of this node
	// (503 beyond).
	MaxSessions          int
	MaxSessionsPerStream int
	// Start is where a new viewer starts (relay.StartGOP by default).
	Start relay.StartMode
	// AllowOrigin is the CORS Access-Control-Allow-Origin value.
	AllowOrigin string
	// DrainTimeout is how long a draining server keeps the sessions it told
	// to reconnect elsewhere before it closes them.
	DrainTimeout time.Duration
	// NodeID names this node in session ids and in its NATS subject; it
	// must match [A-Za-z0-9_-]{1,64} and be unique on the bus. Empty picks
	// a random one.
	NodeID string
	// ConnectTimeout bounds how long a new session may take to connect
	// (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// GatherTimeout bounds candidate gathering for an answer; what was
	// gathered by then is sent (default DefaultGatherTimeout).
	GatherTimeout time.Duration
	// ForwardTimeout bounds a PATCH or DELETE forwarded to the owning node
	// (default DefaultForwardTimeout).
	ForwardTimeout time.Duration
	// BodyTimeout bounds the reading of a request body (default
	// DefaultBodyTimeout).
	BodyTimeout time.Duration
}

// Deps are the services a Server uses.
type Deps struct {
	// Conn carries session requests between nodes. Nil serves only this
	// node's sessions (PATCH/DELETE of another node's session is 404).
	Conn *nats.Conn
	// Catalog tells when a stream is live (required): a *bus.Watcher.
	Catalog Catalog
	// Media provides the tracks (required): FromRelay(r) in production.
	Media Media
	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the server's metrics (default: none).
	Registerer prometheus.Registerer
}

// withDefaults returns cfg with defaults applied, or an error wrapping
// ErrInvalidConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ICEUDPAddr == "" {
		cfg.ICEUDPAddr = DefaultICEUDPAddr
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.Start == "" {
		cfg.Start = DefaultStart
	}
	if cfg.AllowOrigin == "" {
		cfg.AllowOrigin = DefaultAllowOrigin
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.GatherTimeout == 0 {
		cfg.GatherTimeout = DefaultGatherTimeout
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.ICEDisconnectedTimeout == 0 {
		cfg.ICEDisconnectedTimeout = DefaultICEDisconnectedTimeout
	}
	if cfg.ICEFailedTimeout == 0 {
		cfg.ICEFailedTimeout = DefaultICEFailedTimeout
	}
	if cfg.NodeID == "" {
		var b [5]byte
		_, _ = rand.Read(b[:])
		cfg.NodeID = "n" + hex.EncodeToString(b[:])
	}
	if err := cfg.validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// validate checks a Config with its defaults applied.
func (cfg Config) validate() error {
	switch {
	case bus.ValidateName(cfg.NodeID) != nil:
		return fmt.Errorf("%w: node id %q: want 1 to 64 of A-Z a-z 0-9 _ -", ErrInvalidConfig, cfg.NodeID)
	case cfg.WaitTimeout < 0, cfg.ConnectTimeout < 0, cfg.GatherTimeout < 0, cfg.ForwardTimeout < 0, cfg.BodyTimeout < 0,
		cfg.ICEDisconnectedTimeout < 0, cfg.ICEFailedTimeout < 0:
		return fmt.Errorf("%w: timeouts must be > 0", ErrInvalidConfig)
	case cfg.DrainTimeout < 0:
		return fmt.Errorf("%w: drain timeout must be >= 0", ErrInvalidConfig)
	case cfg.MaxWaiting < 0, cfg.MaxSessions < 0, cfg.MaxSessionsPerStream < 0:
		return fmt.Errorf("%w: max-waiting, max-sessions and max-sessions-per-stream must be >= 0", ErrInvalidConfig)
	}
	if _, err := relay.ParseStartMode(string(cfg.Start)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	for _, t := range cfg.AdminTokens {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("%w: an admin token is empty", ErrInvalidConfig)
		}
	}
	return nil
}
