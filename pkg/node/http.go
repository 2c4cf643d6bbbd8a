package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/export"
	"github.com/whepcast/whepcast/pkg/player"
	"github.com/whepcast/whepcast/pkg/whep"
)

// httpServer is the node's HTTP server, whose handler can be replaced: Run
// serves a node that is not connected yet until the node is assembled.
type httpServer struct {
	hs      *http.Server
	handler atomic.Pointer[http.Handler]
	// served receives the result of hs.Serve.
	served chan error
}

// startHTTP serves ln (which it owns) with h in a new goroutine. Requests get a
// context that ends when the shutdown begins, so that long-lived ones (the
// player's server-sent events) let it finish.
func startHTTP(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) *httpServer {
	s := &httpServer{served: make(chan error, 1)}
	s.handle(h)
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	s.hs = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*s.handler.Load()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	s.hs.RegisterOnShutdown(cancelBase)
	go func() {
		s.served <- s.hs.Serve(ln)
		cancelBase()
	}()
	return s
}

// handle makes h serve the requests from now on.
func (s *httpServer) handle(h http.Handler) { s.handler.Store(&h) }

// close stops the server at once and waits for its goroutine.
func (s *httpServer) close() {
	_ = s.hs.Close()
	<-s.served
}

// notConnectedHandler serves a node that has no NATS connection yet: the
// process is alive (/healthz 200) but not ready (503 for the rest).
func notConnectedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "not connected to NATS yet")
	})
}

// sessionsPerStream counts the node's WHEP sessions of each stream, for the
// stream list's viewers across the nodes.
func sessionsPerStream(ws *whep.Server) map[string]int {
	counts := map[string]int{}
	for _, s := range ws.Sessions() {
		counts[s.Stream]++
	}
	return counts
}

// nodeHandler serves the node's endpoints (see the package doc).
func nodeHandler(ws *whep.Server, watcher *bus.Watcher, exports http.Handler, pages player.Options, metrics *prometheus.Registry, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(export.PathPrefix, exports)
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
	mux.Handle("/", player.NewHandler(watcher, logger.With("component", "player"), pages))
	// WHEP paths bypass the mux, whose path-cleaning redirects are 301s
	// (WHEP allows only 307): /whep, /whep//x and the like get a 404.
	whepHandler := ws.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whep" || strings.HasPrefix(r.URL.Path, "/whep/") {
			whepHandler.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
