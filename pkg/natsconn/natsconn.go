// Package natsconn connects a whepcast process, the broker or a whep-node,
// to NATS: authentication (user and password, token, NKey, credentials
// file), TLS, the connection's name, the reconnect policy and its log lines.
//
// Connect waits for a NATS deployment that is not up yet, retrying with
// backoff, and fails at once only on a configuration error (ErrInvalidConfig)
// or a server that refuses the client (authorization, TLS). Once connected,
// the connection reconnects forever, every ReconnectWait. Shutdown drains a
// connection and waits until it is closed.
package natsconn

import (
	"strings"
	"time"
)

// Defaults applied to zero Config fields.
const (
	// DefaultConnectTimeout bounds each connection attempt.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultReconnectWait is the pause between two attempts to reconnect
	// to the same server (nats.go's default is 2 s): a restarted broker is
	// found again within it, so that frames stall as little as possible.
	DefaultReconnectWait = 250 * time.Millisecond
	// DefaultRetryWait is the first pause between two attempts to make the
	// first connection; it doubles after each failure up to
	// DefaultMaxRetryWait.
	DefaultRetryWait    = 250 * time.Millisecond
	DefaultMaxRetryWait = 5 * time.Second
)

// Config configures a connection to a NATS deployment.
type Config struct {
	// URL is one or more server URLs, comma-separated (nats://, tls://,
	// ws://, wss://; a URL without a scheme is nats://). Required.
	URL string
	// Name names the connection in the servers' monitoring.
	Name string
	// At most one authentication: User (with Password), Token, NKeyFile
	// (an NKey seed file) or CredsFile (a user JWT and its seed).
	User      string
	Password  string
	Token     string
	NKeyFile  string
	CredsFile string
	// TLSCA verifies the servers; TLSCert and TLSKey are a client
	// certificate. Any of them turns TLS on.
	TLSCA   string
	TLSCert string
	TLSKey  string
	// ConnectTimeout bounds each connection attempt (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts once
	// connected (default DefaultReconnectWait).
	ReconnectWait time.Duration
	// RetryWait and MaxRetryWait are the first and the largest pause
	// between attempts to make the first connection (defaults
	// DefaultRetryWait and DefaultMaxRetryWait).
	RetryWait    time.Duration
	MaxRetryWait time.Duration
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.RetryWait <= 0 {
		c.RetryWait = DefaultRetryWait
	}
	if c.MaxRetryWait <= 0 {
		c.MaxRetryWait = DefaultMaxRetryWait
	}
	c.MaxRetryWait = max(c.MaxRetryWait, c.RetryWait)
	return c
}

// urls returns the server URLs of c, trimmed, without empty ones.
func (c Config) urls() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
