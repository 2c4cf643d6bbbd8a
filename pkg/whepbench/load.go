package whepbench

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"
)

// LoadConfig configures Load.
type LoadConfig struct {
	// URLs are WHEP endpoints (http://host:port/whep/stream); viewer i
	// uses URLs[i % len(URLs)].
	URLs []string
	// Viewers is the number of viewers, opened at Rate per second
	// (default DefaultRate).
	Viewers int
	Rate    float64
	// Baseline is how long the PIDs are measured before the load (default
	// DefaultBaseline; negative: not at all).
	Baseline time.Duration
	// Duration is the steady window, which starts Settle (default
	// DefaultSettle) after every viewer has connected or failed.
	Duration time.Duration
	Settle   time.Duration
	// ConnectTimeout bounds each viewer's setup (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// PIDs are the server processes whose CPU and RSS are measured.
	PIDs []int
	// Token, when set, is sent as Bearer on POST and DELETE.
	Token string
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *LoadConfig) validate() error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: no WHEP URL", ErrConfig)
	}
	for _, u := range c.URLs {
		if err := checkHTTPURL(u); err != nil {
			return err
		}
	}
	if c.Viewers < 1 || c.Viewers > MaxViewers {
		return fmt.Errorf("%w: viewers %d not in [1, %d]", ErrConfig, c.Viewers, MaxViewers)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("%w: duration %v must be positive", ErrConfig, c.Duration)
	}
	return defaults(&c.Rate, &c.Settle, &c.ConnectTimeout, &c.Logger)
}

func defaults(rate *float64, settle, connect *time.Duration, logger **slog.Logger) error {
	if *rate == 0 {
		*rate = DefaultRate
	}
	if *rate < 0 || *rate > 10000 {
		return fmt.Errorf("%w: rate %v not in (0, 10000]", ErrConfig, *rate)
	}
	if *settle == 0 {
		*settle = DefaultSettle
	}
	if *settle < 0 {
		*settle = 0
	}
	if *connect <= 0 {
		*connect = DefaultConnectTimeout
	}
	if *logger == nil {
		*logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: URL %q: %w", ErrConfig, s, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%w: URL %q: want http://host:port/path", ErrConfig, s)
	}
	return nil
}

// LoadReport is the outcome of Load.
type LoadReport struct {
	URLs []string `json:"urls"`
	Rate float64  `json:"rate_per_s"`
	// Ramp is the time from the first POST until every viewer had
	// connected or failed; Window the steady window.
	Ramp    time.Duration `json:"-"`
	Window  time.Duration `json:"-"`
	RampS   float64       `json:"ramp_s"`
	WindowS float64       `json:"window_s"`
	ViewerStats
	// Servers are the processes of LoadConfig.PIDs, per connected viewer;
	// Self is the load generator.
	Servers []ProcReport `json:"servers"`
	Self    ProcReport   `json:"self"`
	// Host is the machine during the window.
	Host HostReport `json:"host"`
}

// Load opens cfg.Viewers viewers at cfg.Rate, waits until each has
// connected or failed, waits cfg.Settle, measures over cfg.Duration and
// closes the viewers (DELETE). It returns ErrConfig for a bad
// configuration; viewers that fail are counted, not returned as errors.
// When ctx ends early it closes the viewers and returns ctx's error.
func Load(ctx context.Context, cfg LoadConfig) (rep LoadReport, err error) {
	if err := cfg.validate(); err != nil {
		return LoadReport{}, err
	}
	if err := checkPIDs(cfg.PIDs); err != nil {
		return LoadReport{}, err
	}
	c, err := newClient(cfg.Token, cfg.Logger)
	if err != nil {
		return LoadReport{}, err
	}
	defer c.close()
	watch := newProcWatch(cfg.PIDs)
	if cfg.Baseline == 0 {
		cfg.Baseline = DefaultBaseline
	}
	if err := watch.baseline(ctx, cfg.Baseline); err != nil {
		return rep, err
	}

	rep = LoadReport{URLs: cfg.URLs, Rate: cfg.Rate}
	began := time.Now()
	viewers := openViewers(ctx, c, cfg.Viewers, cfg.Rate, cfg.ConnectTimeout, func(i int) string { return cfg.URLs[i%len(cfg.URLs)] }, cfg.Logger)
	defer func() { rep.DeleteErrors = closeViewers(context.WithoutCancel(ctx), viewers) }()
	rep.Ramp = time.Since(began)
	cfg.Logger.Info("viewers set up", "viewers", len(viewers), "ramp", rep.Ramp)

	if err = pause(ctx, cfg.Settle); err != nil {
		return rep, err
	}
	watch.markStart()
	start, startCounts := time.Now(), countRTP(viewers)
	if err = pause(ctx, cfg.Duration); err != nil {
		return rep, err
	}
	rep.Window = time.Since(start)
	rep.ViewerStats = viewerStats(viewers, c.clock.coarse(), startCounts, countRTP(viewers), rep.Window)
	rep.Self, rep.Servers, rep.Host = watch.report(rep.Connected)
	rep.RampS, rep.WindowS = rep.Ramp.Seconds(), rep.Window.Seconds()
	return rep, ctx.Err()
}

// openViewers opens n viewers at rate per second (viewer i on urlOf(i)) and
// returns when every one has connected or failed. Viewers not started
// because ctx ended are nil.
func openViewers(ctx context.Context, c *client, n int, rate float64, timeout time.Duration, urlOf func(int) string, logger *slog.Logger) []*viewer {
	viewers := make([]*viewer, n)
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				wg.Wait()
				return viewers
			}
		}
		wg.Go(func() {
			v := c.openViewer(ctx, urlOf(i), false, timeout)
			if v.err != nil {
				logger.Debug("viewer failed", "viewer", i, "err", v.err)
			}
			viewers[i] = v
		})
	}
	wg.Wait()
	return viewers
}

// pause waits d, or until ctx ends (its error then). It paces the
// scenarios (settle and measurement windows); it never stands in for an
// event.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
