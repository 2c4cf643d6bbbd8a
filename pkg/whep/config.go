package whep

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
)

// Config configures a Server. The embedded config.WHEP holds the operator's
// settings; zero fields get the package defaults (DefaultICEUDPAddr, ...).
// MaxWaiting 0 holds no request (409 at once for a stream that is not live);
// MaxSessions and MaxSessionsPerStream 0 are unlimited.
type Config struct {
	config.WHEP
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
	switch {
	case bus.ValidateName(cfg.NodeID) != nil:
		return cfg, fmt.Errorf("%w: node id %q: want 1 to 64 of A-Z a-z 0-9 _ -", ErrInvalidConfig, cfg.NodeID)
	case cfg.WaitTimeout < 0, cfg.ConnectTimeout < 0, cfg.GatherTimeout < 0, cfg.ForwardTimeout < 0, cfg.BodyTimeout < 0,
		cfg.ICEDisconnectedTimeout < 0, cfg.ICEFailedTimeout < 0:
		return cfg, fmt.Errorf("%w: timeouts must be > 0", ErrInvalidConfig)
	case cfg.MaxWaiting < 0, cfg.MaxSessions < 0, cfg.MaxSessionsPerStream < 0:
		return cfg, fmt.Errorf("%w: max-waiting, max-sessions and max-sessions-per-stream must be >= 0", ErrInvalidConfig)
	case cfg.Start != "gop" && cfg.Start != "live":
		return cfg, fmt.Errorf("%w: start must be gop or live, got %q", ErrInvalidConfig, cfg.Start)
	}
	return cfg, nil
}
