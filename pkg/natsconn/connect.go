package natsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect connects to the servers of c.URL with the options of c (see
// Options) and extra ones (applied last). While no server can be reached it
// retries, pausing RetryWait, then twice as long after each failure up to
// MaxRetryWait, and logs each failure once, with the URL and the pause.
// It returns:
//   - an error wrapping ErrInvalidConfig at once for a bad URL or file;
//   - the server's refusal at once (nats.ErrAuthorization, a TLS error): a
//     retry would be refused again;
//   - ctx's error when ctx ends before a server answered.
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
	opts = append(opts, extra...)
	wait := c.RetryWait
	for attempt := 1; ; attempt++ {
		nc, err := dial(ctx, c.URL, opts)
		if err == nil {
			logger.Info("NATS connected", "url", nc.ConnectedUrlRedacted())
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to nats %s: %w", redact(c.URL), ctx.Err())
		}
		if !unreachable(err) {
			return nil, fmt.Errorf("connecting to nats %s: %w", redact(c.URL), err)
		}
		logger.Warn("NATS not reachable; retrying", "url", redact(c.URL), "err", err, "attempt", attempt, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connecting to nats %s: %w", redact(c.URL), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, c.MaxRetryWait)
	}
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

// unreachable tells whether err means that no server could be reached (yet),
// as opposed to a server that refused the client.
func unreachable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}
