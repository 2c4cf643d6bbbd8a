// Package command runs a whepcast process: it loads the configuration
// (printing usage for --help), builds the logger, and runs the process's
// work under a context that the first SIGINT or SIGTERM cancels; a second
// signal exits at once. With --debug-addr it also serves Go's profiles
// (net/http/pprof) on that address for the life of the process. Exit codes: 0 done (or --help), 1 the work failed,
// 2 bad configuration.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/logging"
)

// Spec describes one command.
type Spec[C any] struct {
	// Name prefixes error messages ("broker: ...").
	Name string
	// Load builds the configuration from arguments and environment.
	Load func(args, env []string) (*C, error)
	// Log returns the logging section of the configuration.
	Log func(*C) config.Log
	// Debug returns the diagnostics section (nil: none).
	Debug func(*C) config.Debug
	// Run does the work until ctx is done.
	Run func(ctx context.Context, cfg *C, logger *slog.Logger) error
}

// Main runs spec with the process's arguments, environment and signals and
// returns the exit code.
func Main[C any](spec Spec[C]) int {
	return run(spec, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
}

func run[C any](spec Spec[C], args, env []string, stdout, stderr io.Writer) int {
	cfg, err := spec.Load(args, env)
	if err != nil {
		var help *config.HelpError
		if errors.As(err, &help) {
			fmt.Fprint(stdout, help.Usage)
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	logger, err := logging.New(spec.Log(cfg), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 2
	}

	if spec.Debug != nil {
		if addr := spec.Debug(cfg).Addr; addr != "" {
			stopDebug, err := serveDebug(addr, logger)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
				return 1
			}
			defer stopDebug()
		}
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

	if err := spec.Run(ctx, cfg, logger); err != nil {
		logger.Error(spec.Name+" failed", "err", err)
		return 1
	}
	return 0
}
