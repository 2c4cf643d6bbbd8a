// Package node assembles a whep-node: the NATS connection, the catalog
// watcher, the relay, the WHEP server and the node's HTTP endpoints (/whep/,
// GET /sessions, GET /export/ clips, /healthz, /readyz, /metrics and the
// player pages) under one lifecycle. Run is cmd/whep-node; Serve is the same
// node on a connection and a listener it is given, which the broker uses for
// its in-process WHEP.
// Run serves HTTP at once and waits for NATS (retrying with backoff): until
// it is connected, /healthz answers 200 and every other request 503. A node
// then waits for JetStream to answer (the catalog's first load, retried with
// backoff: bus.WaitCatalog) before it serves.
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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/export"
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
// to NATS and serves (see Serve). While NATS cannot be reached it retries
// (natsconn.Connect), serving /healthz and answering /readyz and every other
// request 503. It returns nil after a clean shutdown (also when ctx ends
// before NATS was reached), or the error that stopped it: a configuration
// error, or a NATS server that refuses the node.
func Run(ctx context.Context, cfg config.Node, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node: listen %s: %w", cfg.HTTPAddr, err)
	}
	return run(ctx, ln, cfg.NATS.Config(natsName), cfg.WHEP, logger)
}

// run is Run on a bound listener, which it owns.
func run(ctx context.Context, ln net.Listener, nconf natsconn.Config, cfg config.WHEP, logger *slog.Logger) error {
	srv := startHTTP(ctx, ln, notConnectedHandler(), logger)
	logger.Info("whep-node connecting to NATS", "http", ln.Addr().String())
	nc, err := natsconn.Connect(ctx, nconf, logger)
	if err != nil {
		srv.close()
		if ctx.Err() != nil {
			logger.Info("stopped before NATS was reached")
			return nil
		}
		return fmt.Errorf("node: %w", err)
	}
	serveErr := serve(ctx, ln, srv, nc, cfg, logger)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := natsconn.Shutdown(sctx, nc); err != nil {
		logger.Warn("NATS drain", "err", err)
	}
	return serveErr
}

// shutdownWHEP stops ws taking sessions and waits until it has none left,
// at most limit (0: no wait).
func shutdownWHEP(ws *whep.Server, limit time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	began := time.Now()
	err := ws.Shutdown(ctx)
	switch {
	case limit == 0:
	case err == nil:
		logger.Info("drained", "after", time.Since(began).Round(time.Millisecond))
	default:
		logger.Warn("drain did not end in time; closing the sessions left", "after", limit)
	}
}

// Serve plays the streams of nc over WHEP on ln until ctx ends, then shuts
// down (see the package doc). It owns ln. cfg holds the settings of its WHEP
// server (cfg.Config) and of its relay (cfg.Relay). It returns nil after a
// clean shutdown, or the error that stopped it.
func Serve(ctx context.Context, ln net.Listener, nc *nats.Conn, cfg config.WHEP, logger *slog.Logger) error {
	return serve(ctx, ln, nil, nc, cfg, logger)
}

// serve assembles the node on nc, then serves its handler on srv, or on a
// new server of ln when srv is nil, until ctx ends or the server fails; then
// it shuts everything down, the server and ln included.
func serve(ctx context.Context, ln net.Listener, srv *httpServer, nc *nats.Conn, settings config.WHEP, logger *slog.Logger) error {
	cfg := settings.Config()
	assembled := false
	defer func() {
		if assembled {
			return
		}
		if srv != nil {
			srv.close()
		} else {
			_ = ln.Close()
		}
	}()
	metrics := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := metrics.Register(c); err != nil {
			return fmt.Errorf("node: metrics: %w", err)
		}
	}
	watcher, err := bus.WaitCatalog(ctx, nc, logger.With("component", "catalog"))
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("stopped before the catalog was loaded", "err", err)
			return nil
		}
		return fmt.Errorf("node: catalog: %w", err)
	}
	defer watcher.Close()
	rcfg := settings.Relay()
	rcfg.Conn, rcfg.Catalog, rcfg.Logger = nc, watcher, logger.With("component", "relay")
	rl, err := relay.New(rcfg)
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
	exports, err := export.NewHandler(settings.Export(), export.Deps{Conn: nc, Authorizer: ws, Logger: logger.With("component", "export")})
	if err != nil {
		_ = ws.Close()
		return fmt.Errorf("node: export: %w", err)
	}
	// The stream list's viewers across the nodes and retention windows.
	counts, err := player.ServeViewerCounts(nc, ws.NodeID(), func() map[string]int { return sessionsPerStream(ws) })
	if err != nil {
		_ = ws.Close()
		return fmt.Errorf("node: %w", err)
	}
	defer func() { _ = counts.Unsubscribe() }()
	js, err := jetstream.New(nc)
	if err != nil {
		_ = ws.Close()
		return fmt.Errorf("node: jetstream: %w", err)
	}
	pages := player.Options{Viewers: player.NewNATSViewerCounts(nc, 0, 0), Retention: player.NewBusRetention(js)}
	handler := nodeHandler(ws, watcher, exports, pages, metrics, logger)
	if srv == nil {
		srv = startHTTP(ctx, ln, handler, logger)
	} else {
		srv.handle(handler)
	}
	assembled = true
	logger.Info("whep-node serving", "http", ln.Addr().String(), "ice_udp", ws.ICEUDPAddrs())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-srv.served:
		runErr = fmt.Errorf("node: http: %w", runErr)
	}

	logger.Info("shutting down")
	var drainWait time.Duration
	if runErr == nil && cfg.DrainTimeout > 0 {
		drainWait = cfg.DrainTimeout + drainGrace
	}
	shutdownWHEP(ws, drainWait, logger)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.hs.Shutdown(sctx); err != nil {
		logger.Warn("HTTP shutdown", "err", err)
		_ = srv.hs.Close()
	}
	if runErr == nil {
		if err := <-srv.served; !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("node: http: %w", err)
		}
	}
	if err := ws.Close(); err != nil {
		logger.Warn("WHEP close", "err", err)
	}
	rl.Close()
	watcher.Close()
	logger.Info("stopped")
	return runErr
}
