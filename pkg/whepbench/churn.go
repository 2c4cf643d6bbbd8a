package whepbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Defaults and limits of Churn.
const (
	// DefaultChurnConcurrency is the default number of sessions open at the
	// same time.
	DefaultChurnConcurrency = 32
	// DefaultPlayTimeout bounds a churn session from its start to its first
	// keyframe.
	DefaultPlayTimeout = 20 * time.Second
	// MaxChurnSessions bounds ChurnConfig.Sessions.
	MaxChurnSessions = 1_000_000
	// MaxChurnConcurrency bounds ChurnConfig.Concurrency.
	MaxChurnConcurrency = 10_000
)

// ChurnConfig configures Churn.
type ChurnConfig struct {
	// URLs are WHEP endpoints (http://host:port/whep/stream); session i
	// uses URLs[i % len(URLs)].
	URLs []string
	// Sessions is the number of sessions opened and closed, Concurrency
	// how many are under way at the same time (default
	// DefaultChurnConcurrency).
	Sessions    int
	Concurrency int
	// PlayTimeout bounds each session from its start (before its offer is
	// made) to its first keyframe: gathering, POST, ICE, DTLS and media
	// (default DefaultPlayTimeout).
	PlayTimeout time.Duration
	// Hold is how long a session stays open once it played, before it is
	// deleted (default 0: at once).
	Hold time.Duration
	// Baseline is how long the PIDs are measured before the first session
	// (default DefaultBaseline; negative: not at all).
	Baseline time.Duration
	// PIDs are the server processes whose CPU and RSS are measured.
	PIDs []int
	// Token, when set, is sent as Bearer on POST and DELETE.
	Token string
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *ChurnConfig) validate() error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: no WHEP URL", ErrConfig)
	}
	for _, u := range c.URLs {
		if err := checkHTTPURL(u); err != nil {
			return err
		}
	}
	if c.Sessions < 1 || c.Sessions > MaxChurnSessions {
		return fmt.Errorf("%w: sessions %d not in [1, %d]", ErrConfig, c.Sessions, MaxChurnSessions)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultChurnConcurrency
	}
	if c.Concurrency < 1 || c.Concurrency > MaxChurnConcurrency {
		return fmt.Errorf("%w: concurrency %d not in [1, %d]", ErrConfig, c.Concurrency, MaxChurnConcurrency)
	}
	if c.PlayTimeout < 0 {
		return fmt.Errorf("%w: play timeout %v is negative", ErrConfig, c.PlayTimeout)
	}
	if c.PlayTimeout == 0 {
		c.PlayTimeout = DefaultPlayTimeout
	}
	if c.Hold < 0 {
		return fmt.Errorf("%w: hold %v is negative", ErrConfig, c.Hold)
	}
	if c.Baseline == 0 {
		c.Baseline = DefaultBaseline
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ChurnReport is the outcome of Churn.
type ChurnReport struct {
	URLs        []string `json:"urls"`
	Sessions    int      `json:"sessions"`
	Concurrency int      `json:"concurrency"`
	// Started sessions (all of them unless the run was interrupted);
	// Opened got 201 to their POST; Connected reached ICE+DTLS connected;
	// Played received their first complete keyframe (their first RTP
	// packet when the answer has no video). Failed = Started - Played.
	Started   int `json:"started"`
	Opened    int `json:"opened"`
	Connected int `json:"connected"`
	Played    int `json:"played"`
	Failed    int `json:"failed"`
	// Failures counts the failed sessions by error message.
	Failures map[string]int `json:"failures,omitempty"`
	// DeleteErrors counts the failed DELETEs of the connected sessions. (A
	// session created but not connected is deleted too, by the viewer's
	// setup, which does not report how its DELETE went.)
	DeleteErrors int `json:"delete_errors"`
	// Connect is POST sent to PeerConnection connected, over the connected
	// sessions; TTFF is POST sent to the first complete keyframe (first
	// packet without video), over the played sessions.
	Connect Summary `json:"connect"`
	TTFF    Summary `json:"ttff"`
	// Elapsed is the time from the first session's start until the last
	// one was closed; SessionsPerS is Started / Elapsed.
	Elapsed      time.Duration `json:"-"`
	ElapsedS     float64       `json:"elapsed_s"`
	SessionsPerS float64       `json:"sessions_per_s"`
	// Servers are the processes of ChurnConfig.PIDs and Self the load
	// generator, over the run; their units are the started sessions.
	Servers []ChurnProc `json:"servers"`
	Self    ChurnProc   `json:"self"`
	// Host is the machine during the run.
	Host HostReport `json:"host"`
}

// ChurnProc is a process's cost over a churn run. Its ProcReport's window is
// the run; RSSAfter is read right after the last session was closed.
type ChurnProc struct {
	ProcReport
	// CPUPerSessionMS is the CPU time used in the run beyond the baseline,
	// per started session, in milliseconds.
	CPUPerSessionMS float64 `json:"cpu_per_session_ms"`
	// RSSGrowth is RSSAfter - RSSBefore.
	RSSGrowth int64 `json:"rss_growth_bytes"`
}

func churnProc(p ProcReport) ChurnProc {
	return ChurnProc{ProcReport: p, CPUPerSessionMS: p.CorePerUnit * p.WindowSeconds * 1e3, RSSGrowth: p.RSSAfter - p.RSSBefore}
}

// churnResult is the outcome of one session.
type churnResult struct {
	started, opened, connected, played bool
	err, deleteErr                     error
	connect, ttff                      time.Duration
}

// Churn opens and closes cfg.Sessions sessions, cfg.Concurrency at a time:
// each one is set up (offer, POST, answer, ICE, DTLS), waits for its first
// complete keyframe (for its first RTP packet when the answer has no
// video), at most cfg.PlayTimeout from its start, stays open cfg.Hold, and
// is closed: DELETE, then the PeerConnection. Every session is closed when
// Churn returns. It returns ErrConfig for a bad configuration; sessions that
// fail are counted, not returned as errors. When ctx ends early the
// sessions under way fail, no more are started, and Churn returns the
// report so far with ctx's error.
func Churn(ctx context.Context, cfg ChurnConfig) (rep ChurnReport, err error) {
	if err := cfg.validate(); err != nil {
		return ChurnReport{}, err
	}
	if err := checkPIDs(cfg.PIDs); err != nil {
		return ChurnReport{}, err
	}
	c, err := newClient(cfg.Token, cfg.Logger)
	if err != nil {
		return ChurnReport{}, err
	}
	defer c.close()
	watch := newProcWatch(cfg.PIDs)
	if err := watch.baseline(ctx, cfg.Baseline); err != nil {
		return ChurnReport{}, err
	}

	rep = ChurnReport{URLs: cfg.URLs, Sessions: cfg.Sessions, Concurrency: min(cfg.Concurrency, cfg.Sessions)}
	results := make([]churnResult, cfg.Sessions)
	var next, done atomic.Int64
	progress := max(int64(cfg.Sessions/10), 1)
	watch.markStart()
	began := time.Now()
	var wg sync.WaitGroup
	for range rep.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.Sessions {
					return
				}
				r := runChurnSession(ctx, c, cfg.URLs[i%len(cfg.URLs)], cfg.PlayTimeout, cfg.Hold)
				if r.err != nil {
					cfg.Logger.Debug("session failed", "session", i, "err", r.err)
				}
				results[i] = r
				if n := done.Add(1); n%progress == 0 {
					cfg.Logger.Info("churn", "done", n, "of", cfg.Sessions, "elapsed", time.Since(began).Round(time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(began)
	rep.summarize(results)
	self, servers, host := watch.report(rep.Started)
	rep.Self, rep.Host = churnProc(self), host
	for _, s := range servers {
		rep.Servers = append(rep.Servers, churnProc(s))
	}
	return rep, ctx.Err()
}

// runChurnSession opens one session on url, waits until it plays (at most
// timeout), keeps it hold and closes it.
func runChurnSession(ctx context.Context, c *client, url string, timeout, hold time.Duration) churnResult {
	r := churnResult{started: true}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v := c.openViewer(sctx, url, false, timeout)
	// openViewer ran connect in this goroutine: its fields are settled.
	r.opened = v.location != ""
	if v.err != nil {
		r.err = v.err // openViewer closed it
		return r
	}
	r.connected = true
	r.connect = time.Duration(v.connectedAt.Load() - v.postAt.Load())
	played := v.keyframeCh
	if !answerHasVideo(v.pc) {
		played = v.mediaCh
	}
	select {
	case <-played:
		r.played = true
		if v.keyframes.Load() > 0 {
			r.ttff = time.Duration(v.ttff.Load())
		} else {
			r.ttff = time.Duration(c.clock.precise() - v.postAt.Load())
		}
	case <-v.failedCh:
		r.err = errors.New("connection failed before the first keyframe")
	case <-sctx.Done():
		if ctx.Err() != nil {
			r.err = fmt.Errorf("no keyframe: %w", context.Cause(ctx))
		} else {
			r.err = fmt.Errorf("no keyframe within %v", timeout)
		}
	}
	if r.played && hold > 0 {
		_ = pause(ctx, hold)
	}
	r.deleteErr = v.close(context.WithoutCancel(ctx))
	return r
}

// answerHasVideo reports whether the remote answer of pc sends video: a
// video section that is not rejected (port 0), inactive or recvonly.
func answerHasVideo(pc *webrtc.PeerConnection) bool {
	desc := pc.RemoteDescription()
	if desc == nil {
		return false
	}
	d := webrtc.SessionDescription{Type: desc.Type, SDP: desc.SDP} // Unmarshal writes to its receiver
	parsed, err := d.Unmarshal()
	if err != nil {
		return false
	}
	for _, md := range parsed.MediaDescriptions {
		if md.MediaName.Media != "video" || md.MediaName.Port.Value == 0 {
			continue
		}
		_, inactive := md.Attribute("inactive")
		_, recvonly := md.Attribute("recvonly")
		if !inactive && !recvonly {
			return true
		}
	}
	return false
}

// summarize fills the counts and summaries from the sessions' results.
func (rep *ChurnReport) summarize(results []churnResult) {
	var connect, ttff []time.Duration
	for _, r := range results {
		if !r.started {
			continue
		}
		rep.Started++
		if r.opened {
			rep.Opened++
		}
		if r.deleteErr != nil {
			rep.DeleteErrors++
		}
		if r.connected {
			rep.Connected++
			connect = append(connect, r.connect)
		}
		if r.played {
			rep.Played++
			ttff = append(ttff, r.ttff)
			continue
		}
		rep.Failed++
		if rep.Failures == nil {
			rep.Failures = map[string]int{}
		}
		msg := "unknown"
		if r.err != nil {
			msg = r.err.Error()
		}
		if _, ok := rep.Failures[msg]; !ok && len(rep.Failures) >= maxFailureKinds {
			msg = "other"
		}
		rep.Failures[msg]++
	}
	rep.Connect, rep.TTFF = Summarize(connect), Summarize(ttff)
	rep.ElapsedS = rep.Elapsed.Seconds()
	if rep.Elapsed > 0 {
		rep.SessionsPerS = float64(rep.Started) / rep.Elapsed.Seconds()
	}
}

// WriteText writes the report as a table.
func (r ChurnReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.row("scenario", "churn")
	t.row("urls", strings.Join(r.URLs, " "))
	t.row("sessions", fmt.Sprintf("%d at concurrency %d in %.1f s: %.1f sessions/s", r.Started, r.Concurrency, r.ElapsedS, r.SessionsPerS))
	t.row("outcome", fmt.Sprintf("opened %d, connected %d, played %d, failed %d, delete errors %d",
		r.Opened, r.Connected, r.Played, r.Failed, r.DeleteErrors))
	t.row("connect", summaryText(r.Connect))
	t.row("ttff", summaryText(r.TTFF))
	writeFailures(t, r.Failures)
	for _, p := range append(slices.Clone(r.Servers), r.Self) {
		if p.Err != "" {
			t.row(p.Label, "error: "+p.Err)
			continue
		}
		t.row(p.Label, fmt.Sprintf("%.3f cores (%.2f s CPU in %.1f s; baseline %.3f cores), %.2f ms CPU per session",
			p.Cores, p.CPUSeconds, p.WindowSeconds, p.BaselineCores, p.CPUPerSessionMS))
		growth := 0.0
		if p.RSSBefore > 0 {
			growth = 100 * float64(p.RSSGrowth) / float64(p.RSSBefore)
		}
		t.row(p.Label+" RSS", fmt.Sprintf("%.1f → %.1f MiB (%+.1f %%)", mib(p.RSSBefore), mib(p.RSSAfter), growth))
	}
	writeHost(t, r.Host)
	return t.flush()
}
