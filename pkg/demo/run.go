package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Run publishes the bundled clip as stream StreamName on nc (a new epoch,
// like any publication) until ctx is done, then closes the publisher
// (the catalog marks the stream ended) and returns nil. It is what
// `broker --demo` runs.
func Run(ctx context.Context, nc *nats.Conn, pc bus.PublisherConfig, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pc.Logger = logger
	pub, err := bus.NewPublisher(ctx, nc, StreamName, pc)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	err = Loop(ctx, pub, Options{Logger: logger.With("epoch", pub.Epoch())})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if cerr := pub.Shutdown(cctx); cerr != nil {
		logger.Warn("demo: closing the publisher", "err", cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
