package natsconn

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
)

// Options returns the nats.Options of a connection of c, without the URL:
// authentication, TLS, name, timeout, the reconnect policy (forever, every
// ReconnectWait) and the log lines of disconnections and reconnections. The
// files c names are read and checked now: a missing or invalid one is an
// error wrapping ErrInvalidConfig, naming the file.
func (c Config) Options(logger *slog.Logger) ([]nats.Option, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c = c.withDefaults()
	auth, err := c.authOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	// The TLS options read their files when applied: apply them once here
	// so that a bad file is a configuration error, not a failed attempt.
	probe := nats.GetDefaultOptions()
	for _, o := range auth {
		if err := o(&probe); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	opts := append(auth,
		nats.Name(c.Name),
		nats.Timeout(c.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when the connection is closed on purpose
				logger.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	)
	return opts, nil
}

// authOptions returns the options that authenticate and secure a
// connection: user and password, token, NKey seed file, credentials file,
// CA and client certificate. It fails when the NKey seed file cannot be
// read, or the credentials file does not hold a user JWT and its seed.
func (c Config) authOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey file: %w", err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		if err := checkCredsFile(c.CredsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// checkURLs checks the syntax of c.URL.
func (c Config) checkURLs() error {
	urls := c.urls()
	if len(urls) == 0 {
		return fmt.Errorf("%w: no NATS URL", ErrInvalidConfig)
	}
	for _, u := range urls {
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		pu, err := url.Parse(u)
		switch {
		case err != nil:
			return fmt.Errorf("%w: NATS URL: %w", ErrInvalidConfig, err)
		case pu.Scheme != "nats" && pu.Scheme != "tls" && pu.Scheme != "ws" && pu.Scheme != "wss":
			return fmt.Errorf("%w: NATS URL %q: scheme must be nats, tls, ws or wss", ErrInvalidConfig, redact(u))
		case pu.Host == "":
			return fmt.Errorf("%w: NATS URL %q has no host", ErrInvalidConfig, redact(u))
		}
	}
	return nil
}

// redact returns the URLs of s (comma-separated) without their user
// information, which may hold a password or a token.
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if k := strings.Index(p, "://"); k >= 0 && k < at {
				scheme = p[:k+3]
			}
			p = scheme + "redacted@" + p[at+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
