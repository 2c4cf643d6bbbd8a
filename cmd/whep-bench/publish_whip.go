package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/whepcast/whepcast/pkg/whepbench"
)

// publishWHIPCommand runs whepbench.PublishWHIP: M WHIP publishers of a TS
// file's H.264 and Opus, for measuring the broker's WHIP ingest from outside
// (scripts/bench-ingest-protocols.sh reads the broker's CPU).
func publishWHIPCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.WHIPPublishConfig
	var file string
	fs.StringVar(&cfg.URL, "url", "", "WHIP endpoint prefix; stream names are appended (http://127.0.0.1:8080/whip/)")
	fs.StringVar(&cfg.Prefix, "prefix", "bench-", "stream name prefix")
	fs.IntVar(&cfg.Streams, "streams", 10, "number of simultaneous WHIP publishers")
	fs.StringVar(&file, "file", "", "MPEG-TS file of H.264 and Opus, looped in real time by every publisher")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "whole run")
	fs.DurationVar(&cfg.Stagger, "stagger", time.Second, "spread of the publisher starts")
	fs.StringVar(&cfg.Token, "token", "", "ingest Bearer token")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		var err error
		if cfg.File, err = readFile(file); err != nil {
			return nil, err
		}
		cfg.Logger = logger
		rep, err := whepbench.PublishWHIP(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) || errors.Is(err, whepbench.ErrTS) {
			return nil, err
		}
		return rep, err
	}
}
