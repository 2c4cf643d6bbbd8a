// Package node assembles a whep-node: the NATS connection, the catalog
// watcher, the relay, the WHEP server and the node's HTTP endpoints (/whep/,
// GET /sessions, /healthz, /readyz, /metrics and the player pages) under one
// lifecycle. Run is cmd/whep-node; Serve is the same node on a connection
// and a listener it is given, which the broker uses for its in-process WHEP.
//
// When its context ends a node drains: POSTs get 503, /readyz fails and every
// session is told to reconnect elsewhere; the node shuts down once no
// session is left or DrainTimeout (+5 s) has passed, then within
// ShutdownTimeout, then drains its NATS connection. A supervisor must allow
// that long before it kills the node (README, "Draining a node").
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/natsconn"
	"github.com/whepcast/whepcast/pkg/player"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/whep"
)

// Timeouts of the node.
const (
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout = 10 * time.Second
	// ReadHeaderTimeout bounds the reading of request headers.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout = 2 * time.Minute
	// drainGrace is how long the node waits for the drain beyond
	// DrainTimeout, at which the WHEP server closes the sessions left.
	drainGrace = 5 * time.Second
)

// natsName names the node's NATS connection.
const natsName = "whepcast-whep-node"

// Run runs a whep-node until ctx ends: it listens on cfg.HTTPAddr, connects
// to NATS and serves (see Serve). It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg config.Node, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node: listen %s: %w", cfg.HTTPAddr, err)
	}
	nc, err := natsconn.Connect(ctx, cfg.NATS.Config(natsName), logger)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("node: %w", err)
	}
	serveErr := Serve(ctx, ln, nc, cfg.WHEP.Config(), logger)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := natsconn.Shutdown(sctx, nc); err != nil {
		logger.Warn("NATS drain", "err", err)
	}
	return serveErr
}

// waitDrained waits until ws has no session left, at most limit.
func waitDrained(ws *whep.Server, limit time.Duration, logger *slog.Logger) {
	t := time.NewTimer(limit)
	defer t.Stop()
	began := time.Now()
	select {
	case <-ws.Drained():
		logger.Info("drained", "after", time.Since(began).Round(time.Millisecond))
	case <-t.C:
		logger.Warn("drain did not end in time; closing the sessions left", "after", limit)
	}
}

// Serve plays the streams of nc over WHEP on ln until ctx ends, then shuts
// down (see the package doc). It owns ln. It returns nil after a clean
// shutdown, or the error that stopped it.
func Serve(ctx context.Context, ln net.Listener, nc *nats.Conn, cfg whep.Config, logger *slog.Logger) (err error) {
	defer ln.Close()
	metrics := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := metrics.Register(c); err != nil {
			return fmt.Errorf("node: metrics: %w", err)
		}
	}
	watcher, err := bus.WatchCatalog(ctx, nc, logger.With("component", "catalog"))
	if err != nil {
		return fmt.Errorf("node: catalog: %w", err)
	}
	defer watcher.Close()
	rl, err := relay.New(relay.Config{Conn: nc, Catalog: watcher, Logger: logger.With("component", "relay"), Start: cfg.Start})
	if err != nil {
		return fmt.Errorf("node: relay: %w", err)
	}
	defer rl.Close()
	ws, err := whep.New(cfg, whep.Deps{
		Conn:       nc,
		Catalog:    watcher,
		Media:      whep.FromRelay(rl),
		Logger:     logger.With("component", "whep"),
		Registerer: metrics,
	})
	if err != nil {
		return fmt.Errorf("node: whep: %w", err)
	}
	logger = logger.With("node", ws.NodeID())

	mux := http.NewServeMux()
	mux.Handle("/sessions", ws.SessionsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ws.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.Handle("/", player.Handler(watcher, logger.With("component", "player")))
	// WHEP paths bypass the mux, whose path-cleaning redirects are 301s
	// (WHEP allows only 307): /whep, /whep//x and the like get a 404.
	whepHandler := ws.Handler()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whep" || strings.HasPrefix(r.URL.Path, "/whep/") {
			whepHandler.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})

	// Requests get a context that ends when the shutdown begins, so that
	// long-lived ones (the player's server-sent events) let it finish.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(cancelBase)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("whep-node serving", "http", ln.Addr().String(), "ice_udp", ws.ICEUDPAddrs())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-served:
		runErr = fmt.Errorf("node: http: %w", runErr)
	}

	logger.Info("shutting down")
	ws.Drain()
	if runErr == nil && cfg.DrainTimeout > 0 {
		waitDrained(ws, cfg.DrainTimeout+drainGrace, logger)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("HTTP shutdown", "err", err)
		_ = hs.Close()
	}
	if runErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("node: http: %w", err)
		}
	}
	if err := ws.Close(sctx); err != nil {
		logger.Warn("WHEP close", "err", err)
	}
	rl.Close()
	watcher.Close()
	logger.Info("stopped")
	return runErr
}
