// Command whep-bench measures WHEP servers (see package whepbench and
// docs/benchmarks.md):
//
//	whep-bench load    --url URL [--url URL] --viewers N --rate R/s --duration D [--pid P ...] [--json FILE]
//	whep-bench latency --ingest URL --whep URL --file F [--viewers N] [--pid P ...] [--json FILE]
//	whep-bench ingest  --ingest PREFIX --streams M --file F --duration D [--pid P ...] [--json FILE]
//	whep-bench churn   --url URL [--url URL] --sessions N --concurrency C [--pid P ...] [--json FILE]
//	whep-bench compare --a-url URL --a-pid P [--a-pid P] --b-url URL --b-pid P --viewers N --duration D [--rounds R]
//	whep-bench publish-whip --url PREFIX --streams M --file F --duration D
//
// Every subcommand prints a table on stdout and, with --json, writes the
// report as JSON to a file ("-": stdout instead of the table). --cpu LIST
// pins whep-bench to CPUs (as taskset -c) and sets GOMAXPROCS to their count.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/whepcast/whepcast/pkg/whepbench"
)

const usage = `Usage: whep-bench COMMAND [flags]

Commands:
  load     N viewers against one or more WHEP URLs: connected/failed/dropped,
           time to first keyframe, server CPU and RSS per viewer
  latency  push a TS file in real time and measure the latency added per frame
  ingest   M real-time ingests of a TS file: broker CPU and RSS per stream
  churn    N sessions opened and closed, C at a time, each until its first
           keyframe: played/failed, time to first keyframe, sessions/s,
           server CPU per session and RSS growth
  compare  the same load against two servers (A then B, --rounds times):
           each one's CPU and RSS per viewer and B's over A's
  publish-whip  M WHIP publishers looping a TS file's H.264 and Opus in real
           time (the broker's CPU is read apart: bench-ingest-protocols.sh)

Run whep-bench COMMAND --help for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "whep-bench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	fs := pflag.NewFlagSet("whep-bench "+args[0], pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.define(fs)
	runCmd := cmd(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "whep-bench %s: %v\n", args[0], err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "whep-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger, err := common.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "whep-bench:", err)
		return 2
	}
	if err := common.pin(logger); err != nil {
		fmt.Fprintln(stderr, "whep-bench:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()

	if common.cpuProfile != "" {
		f, err := os.Create(common.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "whep-bench: --cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "whep-bench: --cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := runCmd(ctx, logger)
	if rep != nil {
		if werr := common.write(rep, stdout); werr != nil {
			fmt.Fprintln(stderr, "whep-bench:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "whep-bench:", err)
		if errors.Is(err, whepbench.ErrConfig) || errors.Is(err, whepbench.ErrTS) {
			return 2
		}
		return 1
	}
	return 0
}

// report is what a command prints.
type report interface{ WriteText(io.Writer) error }

// command defines its flags on fs and returns the function that runs it.
type command func(fs *pflag.FlagSet) func(ctx context.Context, logger *slog.Logger) (report, error)

func lookup(name string) command {
	switch name {
	case "load":
		return loadCommand
	case "latency":
		return latencyCommand
	case "ingest":
		return ingestCommand
	case "churn":
		return churnCommand
	case "compare":
		return compareCommand
	case "publish-whip":
		return publishWHIPCommand
	}
	return nil
}

type commonFlags struct {
	json       string
	cpu        string
	logLevel   string
	cpuProfile string
}

func (c *commonFlags) define(fs *pflag.FlagSet) {
	fs.StringVar(&c.json, "json", "", `write the report as JSON to this file ("-": stdout, without the table)`)
	fs.StringVar(&c.cpu, "cpu", "", "pin whep-bench to these CPUs (taskset -c syntax: 1, 0,2, 1-3) and set GOMAXPROCS to their count")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write whep-bench's own CPU profile to this file (is the load generator the bottleneck?)")
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", c.logLevel, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

func (c *commonFlags) pin(logger *slog.Logger) error {
	if c.cpu == "" {
		logger.Info("CPUs", "gomaxprocs", runtime.GOMAXPROCS(0))
		return nil
	}
	cpus, err := whepbench.ParseCPUList(c.cpu)
	if err != nil {
		return fmt.Errorf("--cpu: %w", err)
	}
	if err := whepbench.PinCPUs(cpus); err != nil {
		return fmt.Errorf("--cpu: %w", err)
	}
	runtime.GOMAXPROCS(len(cpus))
	logger.Info("pinned", "cpus", cpus, "gomaxprocs", len(cpus))
	return nil
}

func (c *commonFlags) write(rep report, stdout io.Writer) error {
	if c.json != "-" {
		if err := rep.WriteText(stdout); err != nil {
			return err
		}
	}
	if c.json == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if c.json == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(c.json, b, 0o644)
}

// rateValue is a rate given as "50" or "50/s".
type rateValue float64

func (r *rateValue) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) + "/s" }
func (r *rateValue) Type() string   { return "R/s" }
func (r *rateValue) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive number per second, like 50/s")
	}
	*r = rateValue(v)
	return nil
}

func loadCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.LoadConfig
	rate := rateValue(whepbench.DefaultRate)
	fs.StringArrayVar(&cfg.URLs, "url", nil, "WHEP endpoint, repeatable (viewers go round-robin)")
	fs.IntVar(&cfg.Viewers, "viewers", 100, "number of viewers")
	fs.Var(&rate, "rate", "viewers opened per second")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "steady measurement window (after every viewer connected and --settle)")
	fs.DurationVar(&cfg.Settle, "settle", whepbench.DefaultSettle, "pause between the last viewer connecting and the window")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", whepbench.DefaultConnectTimeout, "bound on each viewer's setup")
	fs.IntSliceVar(&cfg.PIDs, "pid", nil, "server process to measure (CPU, RSS), repeatable")
	fs.DurationVar(&cfg.Baseline, "baseline", whepbench.DefaultBaseline, "how long the --pid processes are measured before the load (its CPU is subtracted; negative: none)")
	fs.StringVar(&cfg.Token, "token", "", "WHEP Bearer token")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		cfg.Rate, cfg.Logger = float64(rate), logger
		rep, err := whepbench.Load(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) {
			return nil, err
		}
		return rep, err
	}
}

func latencyCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.LatencyConfig
	var file string
	rate := rateValue(whepbench.DefaultRate)
	fs.StringVar(&cfg.IngestURL, "ingest", "", "ingest URL of the stream (http://127.0.0.1:8080/ingest/bench)")
	fs.StringVar(&cfg.WHEPURL, "whep", "", "WHEP URL of the same stream (http://127.0.0.1:8889/whep/bench)")
	fs.StringVar(&file, "file", "", "MPEG-TS file with H.264 to push in real time (long enough for the viewers to connect)")
	fs.IntVar(&cfg.Viewers, "viewers", 0, "load viewers besides the measured one")
	fs.Var(&rate, "rate", "load viewers opened per second")
	fs.DurationVar(&cfg.Settle, "settle", whepbench.DefaultSettle, "pause between the last viewer connecting and the window")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", whepbench.DefaultConnectTimeout, "bound on each viewer's setup")
	fs.IntSliceVar(&cfg.PIDs, "pid", nil, "server process to measure (CPU, RSS), repeatable")
	fs.DurationVar(&cfg.Baseline, "baseline", whepbench.DefaultBaseline, "how long the --pid processes are measured before the load (its CPU is subtracted; negative: none)")
	fs.StringVar(&cfg.Token, "token", "", "WHEP Bearer token")
	fs.StringVar(&cfg.IngestToken, "ingest-token", "", "ingest Bearer token")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		sched, err := readSchedule(file)
		if err != nil {
			return nil, err
		}
		cfg.Schedule, cfg.Rate, cfg.Logger = sched, float64(rate), logger
		rep, err := whepbench.Latency(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) {
			return nil, err
		}
		return rep, err
	}
}

func ingestCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.IngestConfig
	var file string
	fs.StringVar(&cfg.IngestURL, "ingest", "", "ingest URL prefix; stream names are appended (http://127.0.0.1:8080/ingest/)")
	fs.StringVar(&cfg.Prefix, "prefix", "bench-", "stream name prefix")
	fs.IntVar(&cfg.Streams, "streams", 10, "number of simultaneous ingests")
	fs.StringVar(&file, "file", "", "MPEG-TS file to push in real time (restarted with a new PUT when it ends)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "whole run")
	fs.DurationVar(&cfg.Stagger, "stagger", time.Second, "spread of the stream starts")
	fs.DurationVar(&cfg.Settle, "settle", whepbench.DefaultSettle, "pause between the last start and the window")
	fs.IntSliceVar(&cfg.PIDs, "pid", nil, "server process to measure (CPU, RSS), repeatable")
	fs.DurationVar(&cfg.Baseline, "baseline", whepbench.DefaultBaseline, "how long the --pid processes are measured before the load (its CPU is subtracted; negative: none)")
	fs.StringVar(&cfg.Token, "token", "", "ingest Bearer token")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		sched, err := readSchedule(file)
		if err != nil {
			return nil, err
		}
		cfg.Schedule, cfg.Logger = sched, logger
		rep, err := whepbench.Ingest(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) {
			return nil, err
		}
		return rep, err
	}
}

func churnCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.ChurnConfig
	fs.StringArrayVar(&cfg.URLs, "url", nil, "WHEP endpoint, repeatable (sessions go round-robin)")
	fs.IntVar(&cfg.Sessions, "sessions", 2000, "number of sessions opened and closed")
	fs.IntVar(&cfg.Concurrency, "concurrency", whepbench.DefaultChurnConcurrency, "sessions under way at the same time")
	fs.DurationVar(&cfg.PlayTimeout, "play-timeout", whepbench.DefaultPlayTimeout, "bound on each session from its start to its first keyframe")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long a session stays open once it played")
	fs.IntSliceVar(&cfg.PIDs, "pid", nil, "server process to measure (CPU, RSS), repeatable")
	fs.DurationVar(&cfg.Baseline, "baseline", whepbench.DefaultBaseline, "how long the --pid processes are measured before the first session (its CPU is subtracted; negative: none)")
	fs.StringVar(&cfg.Token, "token", "", "WHEP Bearer token")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		cfg.Logger = logger
		rep, err := whepbench.Churn(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) {
			return nil, err
		}
		return rep, err
	}
}

func readSchedule(path string) (*whepbench.Schedule, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return whepbench.NewSchedule(data)
}

// readFile reads the --file at path, at most whepbench.MaxFileSize bytes.
func readFile(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --file is required", whepbench.ErrConfig)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --file: %w", whepbench.ErrConfig, err)
	}
	if st.Size() > whepbench.MaxFileSize {
		return nil, fmt.Errorf("%w: --file %s: %d bytes, at most %d", whepbench.ErrConfig, path, st.Size(), whepbench.MaxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --file: %w", whepbench.ErrConfig, err)
	}
	return data, nil
}

func compareCommand(fs *pflag.FlagSet) func(context.Context, *slog.Logger) (report, error) {
	var cfg whepbench.CompareConfig
	rate := rateValue(whepbench.DefaultRate)
	for _, s := range []struct {
		side *whepbench.CompareSide
		flag string
	}{{&cfg.A, "a"}, {&cfg.B, "b"}} {
		fs.StringVar(&s.side.Name, s.flag+"-name", strings.ToUpper(s.flag), "name of side "+strings.ToUpper(s.flag)+" in the report")
		fs.StringArrayVar(&s.side.URLs, s.flag+"-url", nil, "WHEP endpoint of side "+strings.ToUpper(s.flag)+", repeatable")
		fs.IntSliceVar(&s.side.PIDs, s.flag+"-pid", nil, "process of side "+strings.ToUpper(s.flag)+" to measure, repeatable (all of a server's processes)")
		fs.StringVar(&s.side.Token, s.flag+"-token", "", "WHEP Bearer token of side "+strings.ToUpper(s.flag))
	}
	fs.IntVar(&cfg.Rounds, "rounds", 1, "measurements of each side, alternating A then B")
	fs.IntVar(&cfg.Load.Viewers, "viewers", 60, "number of viewers of each run")
	fs.Var(&rate, "rate", "viewers opened per second")
	fs.DurationVar(&cfg.Load.Duration, "duration", 60*time.Second, "steady measurement window of each run")
	fs.DurationVar(&cfg.Load.Settle, "settle", whepbench.DefaultSettle, "pause between the last viewer connecting and the window")
	fs.DurationVar(&cfg.Load.ConnectTimeout, "connect-timeout", whepbench.DefaultConnectTimeout, "bound on each viewer's setup")
	fs.DurationVar(&cfg.Load.Baseline, "baseline", whepbench.DefaultBaseline, "how long each side's processes are measured before its load (its CPU is subtracted; negative: none)")
	return func(ctx context.Context, logger *slog.Logger) (report, error) {
		cfg.Load.Rate, cfg.Load.Logger = float64(rate), logger
		rep, err := whepbench.Compare(ctx, cfg)
		if errors.Is(err, whepbench.ErrConfig) {
			return nil, err
		}
		return rep, err
	}
}
