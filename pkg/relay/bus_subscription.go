package relay

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
)

// subscribeBus opens the bus subscription of a hub: from the stream's
// latest keyframe, so that its GOP cache fills at once. ctx bounds the
// set-up only.
func subscribeBus(ctx context.Context, nc *nats.Conn, name string, handler func(bus.Message), logger *slog.Logger) (subscription, error) {
	sub, err := bus.Subscribe(ctx, nc, name, bus.SubscribeOptions{Logger: logger, Cues: true}, handler)
	if err != nil {
		return nil, err
	}
	return sub, nil
}
