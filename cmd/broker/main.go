// Command broker ingests live MPEG-TS (HTTP PUT/POST /ingest/{stream}, or
// UDP) and publishes it on NATS JetStream, running an embedded nats-server
// unless --nats-url is given. See `broker --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/demo"
	"github.com/whepcast/whepcast/pkg/logging"
	"github.com/whepcast/whepcast/pkg/node"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := config.LoadBroker(os.Args[1:], os.Environ())
	if err != nil {
		var help *config.HelpError
		if errors.As(err, &help) {
			fmt.Print(help.Usage)
			return 0
		}
		fmt.Fprintln(os.Stderr, "broker:", err)
		return 2
	}
	logger, err := logging.New(cfg.Log, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
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

	opts := broker.Options{WHEP: node.Serve, Demo: demo.Run}
	if err := broker.Run(ctx, cfg, logger, opts); err != nil {
		logger.Error("broker failed", "err", err)
		return 1
	}
	return 0
}
