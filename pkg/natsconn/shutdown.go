package natsconn

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Shutdown drains nc (its subscriptions end, what it published is flushed)
// and waits until it is closed. When ctx ends first, or the drain cannot
// start, it closes nc at once and returns the error. It replaces nc's
// closed handler.
func Shutdown(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if nc.IsClosed() {
		return nil
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("nats drain: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("nats drain: %w", ctx.Err())
	}
}
