package whepbench

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IngestConfig configures Ingest.
type IngestConfig struct {
	// IngestURL is the prefix the stream names are appended to
	// (http://host:port/ingest/); the streams are Prefix+"0" ...
	// Prefix+(Streams-1), Prefix defaulting to "bench-".
	IngestURL string
	Prefix    string
	Streams   int
	// Schedule is the file every stream pushes in real time; a stream whose
	// file ends before Duration starts again with a new PUT.
	Schedule *Schedule
	// Baseline is how long the PIDs are measured before the load (default
	// DefaultBaseline; negative: not at all).
	Baseline time.Duration
	// Duration is the whole run. The streams start spread over Stagger
	// (default 1 s); the window opens Settle after the last one started and
	// closes at Duration.
	Duration time.Duration
	Stagger  time.Duration
	Settle   time.Duration
	PIDs     []int
	// Token is the ingest's Bearer token.
	Token  string
	Logger *slog.Logger
}

// IngestReport is the outcome of Ingest.
type IngestReport struct {
	Streams int `json:"streams"`
	// Failed streams had a push fail (and stopped); Failures counts the
	// error messages.
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures,omitempty"`
	// Pushes counts the PUTs (restarts included) that ended with 200.
	Pushes int   `json:"pushes"`
	Bytes  int64 `json:"bytes"`
	// FileBitrate is the bit rate of the pushed file (bits per second).
	FileBitrate float64 `json:"file_bitrate"`
	WindowS     float64 `json:"window_s"`
	// PushMaxLate is how far the slowest pusher fell behind real time.
	PushMaxLate   time.Duration `json:"-"`
	PushMaxLateMS float64       `json:"push_max_late_ms"`
	// Servers are the processes of IngestConfig.PIDs, per stream still
	// pushing at the end of the window.
	Servers []ProcReport `json:"servers"`
	Self    ProcReport   `json:"self"`
	// Host is the machine during the window.
	Host HostReport `json:"host"`
}

// Ingest runs cfg.Streams real-time pushes of cfg.Schedule and measures the
// servers' cost per stream. Errors: ErrConfig; failing pushes are counted.
func Ingest(ctx context.Context, cfg IngestConfig) (rep IngestReport, err error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "bench-"
	}
	if cfg.Streams < 1 || cfg.Streams > MaxStreams {
		return rep, fmt.Errorf("%w: streams %d not in [1, %d]", ErrConfig, cfg.Streams, MaxStreams)
	}
	if cfg.Schedule == nil || cfg.Schedule.Duration <= 0 {
		return rep, fmt.Errorf("%w: no file to push (or one without duration)", ErrConfig)
	}
	if cfg.Stagger == 0 {
		cfg.Stagger = time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	cfg.Settle = max(cfg.Settle, 0) // negative: no settle
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stagger < 0 || cfg.Duration < cfg.Stagger+cfg.Settle+time.Second {
		return rep, fmt.Errorf("%w: duration %v leaves no window after stagger %v and settle %v",
			ErrConfig, cfg.Duration, cfg.Stagger, cfg.Settle)
	}
	targets := make([]pushTarget, cfg.Streams)
	base := strings.TrimSuffix(cfg.IngestURL, "/") + "/"
	for i := range targets {
		if targets[i], err = newPushTarget(base+cfg.Prefix+strconv.Itoa(i), cfg.Token); err != nil {
			return rep, err
		}
	}
	if err := checkPIDs(cfg.PIDs); err != nil {
		return rep, err
	}
	rep.Streams, rep.FileBitrate = cfg.Streams, cfg.Schedule.Bitrate()
	watch := newProcWatch(cfg.PIDs)
	if cfg.Baseline == 0 {
		cfg.Baseline = DefaultBaseline
	}
	if err := watch.baseline(ctx, cfg.Baseline); err != nil {
		return rep, err
	}

	var (
		mu      sync.Mutex
		failed  = map[int]error{}
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		stopped bool
	)
	stopAll := func() {
		if !stopped {
			stopped = true
			close(stop)
		}
	}
	defer func() {
		stopAll()
		wg.Wait()
		rep.Failed = len(failed)
		for _, e := range failed {
			if rep.Failures == nil {
				rep.Failures = map[string]int{}
			}
			msg := e.Error()
			if _, ok := rep.Failures[msg]; !ok && len(rep.Failures) >= maxFailureKinds {
				msg = "other"
			}
			rep.Failures[msg]++
		}
		rep.PushMaxLateMS = ms(rep.PushMaxLate)
	}()

	began := time.Now()
	for i, t := range targets {
		startAt := began.Add(cfg.Stagger * time.Duration(i) / time.Duration(cfg.Streams))
		wg.Go(func() {
			if pause(ctx, time.Until(startAt)) != nil {
				return
			}
			for {
				res, err := push(ctx, t, cfg.Schedule, time.Now(), nil, stop)
				mu.Lock()
				rep.Bytes += res.Bytes
				rep.PushMaxLate = max(rep.PushMaxLate, res.MaxLate)
				if err == nil {
					rep.Pushes++
				} else if ctx.Err() == nil {
					failed[i] = err
				}
				mu.Unlock()
				if err != nil {
					cfg.Logger.Debug("push failed", "stream", i, "err", err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}

	if err := pause(ctx, time.Until(began.Add(cfg.Stagger+cfg.Settle))); err != nil {
		return rep, err
	}
	watch.markStart()
	windowStart := time.Now()
	if err := pause(ctx, time.Until(began.Add(cfg.Duration))); err != nil {
		return rep, err
	}
	rep.WindowS = time.Since(windowStart).Seconds()
	mu.Lock()
	active := cfg.Streams - len(failed)
	mu.Unlock()
	rep.Self, rep.Servers, rep.Host = watch.report(active)
	return rep, nil
}
