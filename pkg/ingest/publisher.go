package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Publisher is where a publication publishes; *bus.Publisher implements it.
type Publisher interface {
	Announce(ctx context.Context, a tsframes.Announcement) error
	Publish(ctx context.Context, f tsframes.Frame) error
	// PublishCue publishes an SCTE-35 cue (ignored before Announce).
	PublishCue(ctx context.Context, c tsframes.Cue) error
	SetIngestStats(s bus.IngestStats)
	Shutdown(ctx context.Context) error
}

// NewPublisherFunc opens the Publisher of one publication of stream with the
// given epoch. onAck is to be called with the latency (or error) of every
// publish acknowledgement.
type NewPublisherFunc func(ctx context.Context, stream string, epoch uint64, onAck func(time.Duration, error)) (Publisher, error)

// BusPublishers returns a NewPublisherFunc that opens bus Publishers on nc
// with cfg, its Epoch, OnAck and Logger set per publication (the logger gains
// the stream and epoch fields).
func BusPublishers(nc *nats.Conn, cfg bus.PublisherConfig) NewPublisherFunc {
	return func(ctx context.Context, stream string, epoch uint64, onAck func(time.Duration, error)) (Publisher, error) {
		c := cfg
		c.Epoch = epoch
		c.OnAck = onAck
		if c.Logger != nil {
			c.Logger = c.Logger.With("stream", stream, "epoch", epoch)
		}
		p, err := bus.NewPublisher(ctx, nc, stream, c)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}
