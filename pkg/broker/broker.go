// Package broker assembles the whepcast broker: the ingests (HTTP, UDP,
// SRT, RTMP, WHIP), the NATS connection (to an embedded nats-server by default),
// the limits and removal of streams (pkg/lifecycle) and the optional
// in-process WHEP server. Its HTTP listener serves PUT|POST /ingest/{stream}
// (ingest.HTTPHandler), WHIP at /whip/{stream} with its page /publish/{stream}
// (pkg/ingest/whip), /healthz and /readyz (200 while the NATS connection
// is up, else 503) and /metrics.
//
// Start binds every listener first, so that a busy address fails fast, then
// starts the embedded nats-server (or connects to --nats-url, waiting for it
// with the ingest listener answering 503) and serves everything under one
// errgroup. When the context ends, or any server fails, the broker stops in
// reverse order within Options.ShutdownTimeout: it ends the publications
// (their connections end, their Publishers are flushed and closed), stops
// the listeners, waits for the WHEP server, drains the NATS connection and
// shuts the embedded server down.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/ingest/whip"
	"github.com/whepcast/whepcast/pkg/natsconn"
	"github.com/whepcast/whepcast/pkg/transcode"
)

// WHEPFunc serves WHEP in process on ln, playing streams from nc, until ctx
// is done; it returns nil then. It owns ln (and closes it).
type WHEPFunc func(ctx context.Context, ln net.Listener, nc *nats.Conn, cfg config.WHEP, logger *slog.Logger) error

// DemoFunc publishes the demo stream on nc, with the broker's publisher
// configuration pc (retention, storage), until ctx is done; it returns nil
// then.
type DemoFunc func(ctx context.Context, nc *nats.Conn, pc bus.PublisherConfig, logger *slog.Logger) error

// Options are the parts of a broker that are not configuration.
type Options struct {
	// WHEP serves WHEP when the configuration sets whep-addr. Start fails
	// when whep-addr is set and WHEP is nil.
	WHEP WHEPFunc
	// Demo runs when the configuration sets demo; when nil, the broker logs
	// that the demo is not available and runs without it.
	Demo DemoFunc
	// Metrics is the registry /metrics serves and the ingest metrics are
	// registered with; nil creates one with the Go and process collectors.
	Metrics *prometheus.Registry
	// EmbeddedMaxPayload is the max payload of the embedded nats-server
	// (0: the embedded package's default).
	EmbeddedMaxPayload int32
	// Publisher tunes the bus Publishers of the publications: its
	// MaxInFlight, StallTimeout and CatalogRefresh are used (0: bus
	// defaults); the other fields are set by the broker.
	Publisher bus.PublisherConfig
	// StatsInterval is how often ingest statistics reach the catalog
	// (0: the ingest default).
	StatsInterval time.Duration
	// ShutdownTimeout bounds the shutdown (default 15 s).
	ShutdownTimeout time.Duration
}

// Broker is a running broker.
type Broker struct {
	cfg  *config.Broker
	opts Options
	log  *slog.Logger

	ingestLn net.Listener
	whepLn   net.Listener
	pubCfg   bus.PublisherConfig
	udp      []*ingest.UDPListener
	proto    protocolIngests  // the SRT and RTMP ingests
	server   *embedded.Server // nil when connected to --nats-url
	nc       *nats.Conn
	reg      *ingest.Publications
	life     *streamLifecycle
	stage    *transcode.Stage // the transcoding stage (pkg/transcode)
	http     *http.Server
	// handler serves the ingest listener (notConnected until the broker
	// has its NATS connection).
	handler    atomic.Pointer[http.Handler]
	httpServed chan error // the result of http.Serve
	metrics    *prometheus.Registry

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Run starts a broker (see Start) and returns when it has stopped: after ctx
// is done and the shutdown finished (nil, or the shutdown's errors), or after
// a server failed (that error).
func Run(ctx context.Context, cfg *config.Broker, logger *slog.Logger, opts Options) error {
	b, err := Start(ctx, cfg, logger, opts)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			logger.Info("broker stopped before NATS was reached")
			return nil
		}
		return err
	}
	return b.Wait()
}

// Start binds the listeners, starts or connects to NATS and starts serving;
// the broker runs until ctx is done or Shutdown is called. While an external
// NATS (--nats-url) cannot be reached, Start waits and retries
// (natsconn.Connect), and the ingest listener answers 503 (/healthz, /readyz
// and ingest alike); it returns ctx's error if ctx ends first. On error
// nothing is left running. cfg must be valid (config.Broker.Validate).
func Start(ctx context.Context, cfg *config.Broker, logger *slog.Logger, opts Options) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 15 * time.Second
	}
	if cfg.WHEPAddr != "" && opts.WHEP == nil {
		return nil, fmt.Errorf("broker: whep-addr %s is set but no in-process WHEP server is wired in (Options.WHEP)", cfg.WHEPAddr)
	}
	b := &Broker{cfg: cfg, opts: opts, log: logger, done: make(chan struct{})}
	started := false
	defer func() {
		if !started {
			b.closeAll()
		}
	}()

	// 1. Every listener, so that a busy address fails before anything runs.
	var err error
	if b.ingestLn, err = net.Listen("tcp", cfg.IngestAddr); err != nil {
		return nil, fmt.Errorf("broker: ingest listener: %w", err)
	}
	if cfg.WHEPAddr != "" {
		if b.whepLn, err = net.Listen("tcp", cfg.WHEPAddr); err != nil {
			return nil, fmt.Errorf("broker: whep listener: %w", err)
		}
	}
	for _, u := range cfg.UDPIngest {
		l, err := ingest.ListenUDP(ingest.UDPConfig{Stream: u.Stream, Addr: u.Addr, Idle: cfg.UDPIdle, Logger: logger.With("component", "ingest", "source", "udp")})
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.udp = append(b.udp, l)
	}
	if err := b.proto.listen(cfg, logger); err != nil {
		return nil, err
	}

	// 2. HTTP, at once: until NATS is connected, every request is 503.
	var waiting http.Handler = http.HandlerFunc(notConnected)
	b.handler.Store(&waiting)
	b.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*b.handler.Load()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	b.httpServed = make(chan error, 1)
	go func() { b.httpServed <- b.http.Serve(b.ingestLn) }()

	// 3. NATS.
	if err := b.connectNATS(ctx); err != nil {
		return nil, err
	}

	// 4. Ingest.
	b.metrics = opts.Metrics
	if b.metrics == nil {
		b.metrics = prometheus.NewRegistry()
		b.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	im, err := ingest.NewMetrics(b.metrics)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	pc := opts.Publisher
	pc.Stream = bus.StreamConfig{Storage: cfg.Storage, Replicas: cfg.Replicas, MaxAge: cfg.MaxAge, MaxBytes: cfg.MaxBytes}
	pc.Logger = logger.With("component", "bus")
	b.pubCfg = pc
	if err := b.startLifecycle(ctx, im); err != nil {
		return nil, err
	}
	ingestLog := logger.With("component", "ingest")
	takeover, err := ingest.ParseTakeoverPolicy(cfg.Takeover)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tc := cfg.TranscodeConfig()
	tc.Logger = logger.With("component", "transcode")
	if b.stage, err = transcode.New(b.nc, b.metrics, tc); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.reg, err = ingest.NewPublications(ingest.Config{
		NewPublisher:  b.life.admission.Publishers(b.stage.Publishers(ingest.BusPublishers(b.nc, pc))),
		Metrics:       im,
		Logger:        ingestLog,
		StatsInterval: opts.StatsInterval,
		Takeover:      takeover,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	ingestHTTP := ingest.NewHTTPHandler(b.reg, ingest.HTTPConfig{Tokens: cfg.IngestTokens, IdleTimeout: cfg.IngestIdle, Logger: ingestLog})
	mux := http.NewServeMux()
	mux.Handle(ingest.PathPrefix, ingestHTTP)
	mux.HandleFunc("GET /healthz", b.healthz)
	mux.HandleFunc("GET /readyz", b.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metrics, promhttp.HandlerOpts{}))
	// Ingest paths reach the ingest handler as they came: the mux would
	// redirect one with dot segments to its cleaned form.
	h := ingestHTTP.InFrontOf(mux)
	// WHIP (POST /whip/{stream}) and its browser page, on the same port.
	mux.Handle(whip.PublishPrefix, whip.PublishPage())
	h = b.proto.newWHIP(cfg, b.reg, b.nc, ingestLog).InFrontOf(h)
	b.handler.Store(&h)

	runCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	started = true
	go b.run(runCtx)
	b.logStart()
	return b, nil
}

// natsName names the broker's NATS connection (and its embedded server).
const natsName = "whepcast-broker"

// connectNATS starts the embedded server and connects in process, or
// connects to cfg.NATS.URL.
func (b *Broker) connectNATS(ctx context.Context) error {
	if b.cfg.NATS.URL != "" {
		nc, err := natsconn.Connect(ctx, b.cfg.NATS.Config(natsName), b.log.With("component", "nats"))
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		b.nc = nc
		return nil
	}
	ec := embedded.Config{
		Port:       embedded.NoListener,
		DataDir:    b.cfg.DataDir,
		MaxPayload: b.opts.EmbeddedMaxPayload,
		ServerName: natsName,
		Logger:     b.log,
		// The monitoring endpoints (--nats-monitor-addr, off when empty).
		MonitorAddr: b.cfg.NATSMonitorAddr,
	}
	if b.cfg.NATSListen != "" {
		host, port, err := net.SplitHostPort(b.cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("broker: nats-listen: %w", err)
		}
		if ec.Port, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("broker: nats-listen port %q: %w", port, err)
		}
		ec.Host = host
	}
	srv, err := embedded.Start(ctx, ec)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.server = srv
	opts, err := natsconn.Config{Name: natsName}.Options(b.log.With("component", "nats"))
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if b.nc, err = srv.Connect(opts...); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// playerURL is the http URL of a WHEP listener as a local browser reaches
// it: an unspecified host (":8889") becomes 127.0.0.1.
func playerURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func (b *Broker) logStart() {
	attrs := []any{"ingest_addr", b.IngestAddr().String(), "nats_url", b.NATSURL()}
	if b.server != nil {
		attrs = append(attrs, "nats", "embedded", "data_dir", b.cfg.DataDir, "storage", b.cfg.Storage)
		if u := b.server.MonitorURL(); u != "" {
			attrs = append(attrs, "nats_monitor_url", u)
		}
	}
	for i, l := range b.udp {
		attrs = append(attrs, "udp_"+b.cfg.UDPIngest[i].Stream, l.Addr().String())
	}
	attrs = append(attrs, b.proto.logAttrs()...)
	if b.whepLn != nil {
		attrs = append(attrs, "whep_addr", b.whepLn.Addr().String())
	}
	b.log.Info("broker started", attrs...)
	if len(b.cfg.IngestTokens) == 0 {
		b.log.Warn("ingest is open: no ingest token is configured (--ingest-token), anyone reaching " + b.IngestAddr().String() + " can publish")
	}
	switch {
	case b.stage.Enabled():
		what := "audio that WebRTC cannot carry (AAC, MPEG audio, AC-3, E-AC-3) becomes Opus"
		if b.cfg.Transcode == string(transcode.ModeAuto) {
			what += ", H.264 with B-frames is re-encoded without, H.265 gets an H.264 rendition"
		}
		b.log.Info("transcoding: "+what, "ffmpeg", b.stage.FFmpeg(), "max_transcodes", b.cfg.MaxTranscodes)
	case b.cfg.Transcode != string(transcode.ModeOff):
		b.log.Warn("transcoding off: ffmpeg not found (--ffmpeg " + b.cfg.FFmpeg + "); streams whose audio is AAC, MPEG audio or AC-3 play without sound")
	}
	if b.cfg.Demo && b.opts.Demo == nil {
		b.log.Warn("demo: no demo is wired in (Options.Demo), running without it")
	}
	if b.cfg.Demo && b.opts.Demo != nil && b.whepLn != nil {
		b.log.Info("demo: open the player at " + playerURL(b.whepLn.Addr()) + "play/demo")
	}
}

// run serves until ctx is done or a server fails, then stops everything.
func (b *Broker) run(ctx context.Context) {
	defer close(b.done)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := <-b.httpServed; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("broker: ingest http: %w", err)
		}
		return nil
	})
	for _, l := range b.udp {
		g.Go(func() error { return l.Serve(gctx, b.reg) })
	}
	b.proto.serve(gctx, g, b)
	g.Go(func() error { return b.life.reclaimer.Run(gctx) })
	if b.whepLn != nil {
		g.Go(func() error {
			if err := b.opts.WHEP(gctx, b.whepLn, b.nc, b.cfg.WHEP, b.log); err != nil {
				return fmt.Errorf("broker: whep: %w", err)
			}
			return nil
		})
	}
	if b.cfg.Demo && b.opts.Demo != nil {
		g.Go(func() error {
			if err := b.opts.Demo(gctx, b.nc, b.pubCfg, b.log.With("component", "demo", "stream", "demo")); err != nil {
				return fmt.Errorf("broker: demo: %w", err)
			}
			return nil
		})
	}
	var stopErr error
	g.Go(func() error {
		<-gctx.Done()
		b.log.Info("broker stopping")
		stopErr = b.stopServing(time.Now().Add(b.opts.ShutdownTimeout))
		return nil
	})
	err := g.Wait()
	// NATS gets its own time budget, counted from when everything that
	// publishes or plays (ingests, the in-process WHEP server, which may
	// drain for --drain-timeout) has stopped.
	ctxErr := b.closeNATS(time.Now().Add(b.opts.ShutdownTimeout))
	b.err = errors.Join(err, stopErr, ctxErr)
	if b.err != nil {
		b.log.Error("broker stopped", "err", b.err)
	} else {
		b.log.Info("broker stopped")
	}
}

// stopServing ends the publications and stops the listeners.
func (b *Broker) stopServing(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var errs []error
	if err := b.reg.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("broker: ending ingests: %w", err))
	}
	b.stage.Close()
	if err := b.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("broker: stopping http: %w", err))
		_ = b.http.Close()
	}
	for _, l := range b.udp {
		_ = l.Close()
	}
	b.proto.close()
	return errors.Join(errs...)
}

// closeNATS drains the connection and shuts the embedded server down.
func (b *Broker) closeNATS(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var errs []error
	if err := natsconn.Shutdown(ctx, b.nc); err != nil {
		errs = append(errs, fmt.Errorf("broker: %w", err))
	}
	if b.server != nil {
		if err := b.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
	}
	return errors.Join(errs...)
}

// closeAll releases what a failed Start created.
func (b *Broker) closeAll() {
	if b.http != nil {
		_ = b.http.Close()
		<-b.httpServed
	}
	if b.ingestLn != nil {
		_ = b.ingestLn.Close()
	}
	if b.whepLn != nil {
		_ = b.whepLn.Close()
	}
	for _, l := range b.udp {
		_ = l.Close()
	}
	b.proto.close()
	if b.nc != nil {
		b.nc.Close()
	}
	if b.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.ShutdownTimeout)
		defer cancel()
		_ = b.server.Shutdown(ctx)
	}
}

// notConnected answers every request of a broker that has no NATS
// connection yet.
func notConnected(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Retry-After", "2")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, "not connected to NATS yet")
}

func (b *Broker) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st := b.nc.Status(); st != nats.CONNECTED {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "nats %s\n", st)
		return
	}
	fmt.Fprintln(w, "ok")
}

// IngestAddr is the bound address of the ingest HTTP listener.
func (b *Broker) IngestAddr() net.Addr { return b.ingestLn.Addr() }

// WHEPAddr is the bound address of the WHEP listener, nil when off.
func (b *Broker) WHEPAddr() net.Addr {
	if b.whepLn == nil {
		return nil
	}
	return b.whepLn.Addr()
}

// UDPAddrs are the bound addresses of the UDP ingests, in configuration order.
func (b *Broker) UDPAddrs() []net.Addr {
	out := make([]net.Addr, len(b.udp))
	for i, l := range b.udp {
		out[i] = l.Addr()
	}
	return out
}

// NATSURL is the URL other processes reach NATS at: the embedded server's
// listener ("" when it has none) or the configured URL.
func (b *Broker) NATSURL() string {
	if b.server != nil {
		return b.server.ClientURL()
	}
	return b.cfg.NATS.URL
}

// Conn is the broker's NATS connection, for in-process users.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// Publications are the ingest publications, for in-process publishers.
func (b *Broker) Publications() *ingest.Publications { return b.reg }

// Done is closed when the broker has stopped.
func (b *Broker) Done() <-chan struct{} { return b.done }

// Wait waits until the broker has stopped and returns why (nil after a
// clean stop caused by the context or Shutdown).
func (b *Broker) Wait() error {
	<-b.done
	return b.err
}

// Shutdown stops the broker gracefully, as when its context ends, and waits
// until it has stopped (see Wait) or ctx ends; then it returns ctx's error
// and the shutdown goes on (bounded by Options.ShutdownTimeout).
func (b *Broker) Shutdown(ctx context.Context) error {
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("broker: shutdown: %w", ctx.Err())
	}
}
