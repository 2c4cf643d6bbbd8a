// Command whep-node plays the live streams of a whepcast NATS bus over WHEP
// (see package node). It is stateless: run as many as needed behind a
// round-robin load balancer. See `whep-node --help`.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/whepcast/whepcast/internal/command"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/node"
)

func main() {
	os.Exit(command.Main(command.Spec[config.Node]{
		Name:  "whep-node",
		Load:  config.LoadNode,
		Log:   func(c *config.Node) config.Log { return c.Log },
		Debug: func(c *config.Node) config.Debug { return c.Debug },
		Run: func(ctx context.Context, c *config.Node, logger *slog.Logger) error {
			return node.Run(ctx, *c, logger)
		},
	}))
}
