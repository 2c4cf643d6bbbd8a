// Command whep-node plays the live streams of a whepcast NATS bus over WHEP
// (see package node). It is stateless: run as many as needed behind a
// round-robin load balancer. See `whep-node --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/logging"
	"github.com/whepcast/whepcast/pkg/node"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := config.LoadNode(os.Args[1:], os.Environ())
	if err != nil {
		var help *config.HelpError
		if errors.As(err, &help) {
			fmt.Print(help.Usage)
			return 0
		}
		fmt.Fprintln(os.Stderr, "whep-node:", err)
		return 2
	}
	logger, err := logging.New(cfg.Log, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "whep-node:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second signal forces exit.
		forced := make(chan os.Signal, 1)
		signal.Notify(forced, syscall.SIGINT, syscall.SIGTERM)
		<-forced
		logger.Error("second signal: exiting without a clean shutdown")
		os.Exit(1)
	}()

	if err := node.Run(ctx, *cfg, logger); err != nil {
		logger.Error("whep-node failed", "err", err)
		return 1
	}
	return 0
}
