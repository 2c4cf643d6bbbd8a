package whepbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// LatencyConfig configures Latency.
type LatencyConfig struct {
	// IngestURL receives the push (http://host:port/ingest/stream);
	// WHEPURL plays the same stream.
	IngestURL string
	WHEPURL   string
	// Schedule is the file to push (NewSchedule); it must carry H.264.
	Schedule *Schedule
	// Viewers is the number of load viewers besides the measured one,
	// opened at Rate per second.
	Viewers int
	Rate    float64
	// Baseline is how long the PIDs are measured before the load (default
	// DefaultBaseline; negative: not at all).
	Baseline time.Duration
	// Settle is the pause after the last viewer connected before the
	// window opens; the window ends with the file.
	Settle         time.Duration
	ConnectTimeout time.Duration
	PIDs           []int
	// Token is the WHEP Bearer token, IngestToken the ingest's.
	Token       string
	IngestToken string
	Logger      *slog.Logger
}

// LatencyReport is the outcome of Latency.
type LatencyReport struct {
	Frames    int     `json:"file_frames"`
	Keyframes int     `json:"file_keyframes"`
	FileS     float64 `json:"file_s"`
	WindowS   float64 `json:"window_s"`
	// Measured frames, frames written in the window that never arrived,
	// arrivals that matched no written frame, keyframes anchored on.
	Measured  int `json:"measured"`
	Missing   int `json:"missing"`
	Unmatched int `json:"unmatched"`
	Anchors   int `json:"anchors"`
	// FromAUEnd: marker packet arrival - write of the AU's last TS packet.
	// FromNextPES: the same arrival - write of the next PES start of the
	// video PID (when the demuxer can know the AU is complete).
	FromAUEnd   Summary `json:"from_au_end"`
	FromNextPES Summary `json:"from_next_pes"`
	// PushMaxLate is how far the pusher fell behind real time.
	PushMaxLate   time.Duration `json:"-"`
	PushMaxLateMS float64       `json:"push_max_late_ms"`
	// Viewers counts the measured viewer and the load viewers.
	Viewers ViewerStats `json:"viewers"`
	// Servers are the processes of LatencyConfig.PIDs; their baseline is
	// taken before the push, so the cost per viewer includes the stream's
	// ingest.
	Servers []ProcReport `json:"servers"`
	Self    ProcReport   `json:"self"`
	// Host is the machine during the window.
	Host HostReport `json:"host"`
}

// Latency pushes cfg.Schedule in real time into cfg.IngestURL, plays the
// stream with one measured viewer and cfg.Viewers load viewers, and
// measures per video frame the latency the chain adds (see the package
// documentation). The window opens Settle after every viewer has connected
// or failed and closes after the last burst (plus a second for the last
// frames); the file must be long enough for that. Errors: ErrConfig, the
// push's error (ErrIngest), the measured viewer's failure.
func Latency(ctx context.Context, cfg LatencyConfig) (rep LatencyReport, err error) {
	if err := checkHTTPURL(cfg.WHEPURL); err != nil {
		return rep, err
	}
	target, err := newPushTarget(cfg.IngestURL, cfg.IngestToken)
	if err != nil {
		return rep, err
	}
	sched := cfg.Schedule
	if sched == nil || sched.Frames() == 0 || sched.Keyframes() == 0 {
		return rep, fmt.Errorf("%w: the latency file needs H.264 with keyframes", ErrConfig)
	}
	if cfg.Viewers < 0 || cfg.Viewers > MaxViewers {
		return rep, fmt.Errorf("%w: viewers %d not in [0, %d]", ErrConfig, cfg.Viewers, MaxViewers)
	}
	if err := defaults(&cfg.Rate, &cfg.Settle, &cfg.ConnectTimeout, &cfg.Logger); err != nil {
		return rep, err
	}
	if err := checkPIDs(cfg.PIDs); err != nil {
		return rep, err
	}
	rep.Frames, rep.Keyframes, rep.FileS = sched.Frames(), sched.Keyframes(), sched.Duration.Seconds()

	c, err := newClient(cfg.Token, cfg.Logger)
	if err != nil {
		return rep, err
	}
	defer c.close()
	watch := newProcWatch(cfg.PIDs)
	if cfg.Baseline == 0 {
		cfg.Baseline = DefaultBaseline
	}
	if err := watch.baseline(ctx, cfg.Baseline); err != nil {
		return rep, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sent := make([]burstWrite, sched.Bursts())
	type pushed struct {
		res pushResult
		err error
	}
	pushDone := make(chan pushed, 1)
	go func() {
		res, err := push(ctx, target, sched, time.Now(), sent, nil)
		pushDone <- pushed{res, err}
	}()
	var pres *pushed
	defer func() {
		if pres == nil {
			cancel(errors.New("whepbench: latency run ended"))
			p := <-pushDone
			pres = &p
		}
	}()

	// The measured viewer first (its POST waits until the stream is live),
	// then the load.
	measured := c.openViewer(ctx, cfg.WHEPURL, true, cfg.ConnectTimeout)
	viewers := []*viewer{measured}
	defer func() { rep.Viewers.DeleteErrors += closeViewers(context.WithoutCancel(ctx), viewers) }()
	if measured.err != nil {
		return rep, fmt.Errorf("whepbench: the measured viewer: %w", measured.err)
	}
	viewers = append(viewers, openViewers(ctx, c, cfg.Viewers, cfg.Rate, cfg.ConnectTimeout,
		func(int) string { return cfg.WHEPURL }, cfg.Logger)...)
	if err := pause(ctx, cfg.Settle); err != nil {
		return rep, err
	}
	watch.markStart()
	windowStart, startCounts := time.Now(), countRTP(viewers)
	select {
	case p := <-pushDone:
		pres = &p
	case <-ctx.Done():
		return rep, context.Cause(ctx)
	}
	// Silences and RTP rates are counted up to the end of the file.
	pushEnd, endCounts, rateWindow := c.clock.coarse(), countRTP(viewers), time.Since(windowStart)
	if pres.err != nil {
		return rep, fmt.Errorf("whepbench: push: %w", pres.err)
	}
	if time.Since(windowStart) < time.Second {
		return rep, fmt.Errorf("%w: the file (%v) ended before the window opened: use a longer file or fewer viewers",
			ErrConfig, sched.Duration.Round(time.Millisecond))
	}
	if err := pause(ctx, drainAfterPush); err != nil {
		return rep, err
	}
	window := time.Since(windowStart)
	rep.WindowS = window.Seconds()
	rep.PushMaxLate, rep.PushMaxLateMS = pres.res.MaxLate, ms(pres.res.MaxLate)
	rep.Viewers = viewerStats(viewers, pushEnd, startCounts, endCounts, rateWindow)
	rep.Self, rep.Servers, rep.Host = watch.report(rep.Viewers.Connected)

	// The measured viewer's reader owns its frames until it is closed.
	if err := measured.close(context.WithoutCancel(ctx)); err != nil {
		rep.Viewers.DeleteErrors++
	}
	m := matchFrames(sched, sent, measured.frames, windowStart)
	rep.Measured, rep.Missing, rep.Unmatched, rep.Anchors = m.matched, m.missing, m.unmatched, m.anchors
	rep.FromAUEnd, rep.FromNextPES = Summarize(m.fromEnd), Summarize(m.fromNext)
	if m.anchors == 0 {
		return rep, fmt.Errorf("%w: the measured viewer received no keyframe in the window", ErrWHEP)
	}
	return rep, nil
}
