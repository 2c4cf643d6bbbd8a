package natsconn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// Connect connects to the servers of c.URL with the options of c (see
// Options) and extra ones (applied last). It returns an error wrapping
// ErrInvalidConfig at once for a bad URL or file, the server's refusal
// (nats.ErrAuthorization, a TLS error), or the failure to reach any server.
func Connect(ctx context.Context, c Config, logger *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c = c.withDefaults()
	if err := c.checkURLs(); err != nil {
		return nil, err
	}
	opts, err := c.Options(logger)
	if err != nil {
		return nil, err
	}
	nc, err := dial(ctx, c.URL, append(opts, extra...))
	if err != nil {
		return nil, fmt.Errorf("connecting to nats %s: %w", redact(c.URL), err)
	}
	logger.Info("NATS connected", "url", nc.ConnectedUrlRedacted())
	return nc, nil
}

// dial makes one connection attempt, abandoned when ctx ends (a connection
// made after that is closed).
func dial(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
