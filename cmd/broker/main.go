// Command broker ingests live MPEG-TS (HTTP PUT/POST /ingest/{stream}, or
// UDP) and publishes it on NATS JetStream, running an embedded nats-server
// unless --nats-url is given. With --whep-addr (or --demo) it also serves
// WHEP and the player in process. See `broker --help`.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/whepcast/whepcast/internal/command"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/demo"
	"github.com/whepcast/whepcast/pkg/node"
)

func main() {
	os.Exit(command.Main(command.Spec[config.Broker]{
		Name:  "broker",
		Load:  config.LoadBroker,
		Log:   func(c *config.Broker) config.Log { return c.Log },
		Debug: func(c *config.Broker) config.Debug { return c.Debug },
		Run: func(ctx context.Context, c *config.Broker, logger *slog.Logger) error {
			return broker.Run(ctx, c, logger, broker.Options{WHEP: node.Serve, Demo: demo.Run})
		},
	}))
}
