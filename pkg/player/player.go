// Package player serves whepcast's web pages: the list of live streams
// (HTML, JSON and server-sent events) and a small WHEP player on standard
// browser APIs, as plain HTML, CSS and JavaScript embedded in the binary (no
// build step). Handler links relatively, so it can be mounted under a prefix
// with the WHEP server beside it at whep/; every response carries a
// same-origin Content-Security-Policy, no-referrer and nosniff. The list's
// viewers across nodes come from a NATS request every node answers
// (ServeViewerCounts, NATSViewerCounts), its retention windows from the bus
// (BusRetention).
//
// The routes, the player's behaviour (reconnects, query parameters, the
// window.whepcast hooks for tests) and the security headers are described in
// docs/player.md.
package player

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Lister is the catalog the pages show. *bus.Watcher satisfies it.
type Lister interface {
	// Live returns the live entries, sorted by stream name.
	Live() []bus.CatalogEntry
	// Subscribe returns a channel that receives every catalog change and a
	// function that ends the subscription. The channel is closed when the
	// catalog stops.
	Subscribe() (<-chan bus.CatalogEntry, func())
}

// ContentSecurityPolicy is the policy sent with every response. connect-src
// allows any http(s) origin because ?whep= may name a third-party WHEP server.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' http: https:; " +
	"base-uri 'none'; form-action 'none'"

//go:embed static
var staticFiles embed.FS

// Options are the pages' optional sources.
type Options struct {
	// Viewers counts each stream's viewers across the nodes (nil: the
	// list shows no viewer count). NATSViewerCounts in production.
	Viewers ViewerCounter
	// Retention tells how far back each stream can be played (nil: the
	// list and the player's timeline show no window). BusRetention in
	// production.
	Retention Retention
}

// Retention tells how far back a stream can be played.
type Retention interface {
	// Oldest returns the time of the oldest point the stream can be played
	// from; an error wrapping bus.ErrNotFound when it holds none.
	Oldest(ctx context.Context, stream string) (time.Time, error)
}

// Handler returns the pages' HTTP handler. streams may be nil (no stream is
// ever listed); logger may be nil (nothing is logged).
func Handler(streams Lister, logger *slog.Logger) http.Handler {
	return NewHandler(streams, logger, Options{})
}

// NewHandler is Handler with the optional sources of opts.
func NewHandler(streams Lister, logger *slog.Logger, opts Options) http.Handler {
	return newHandler(streams, logger, opts, time.Now)
}

// newHandler is NewHandler with a clock (tests set it).
func newHandler(streams Lister, logger *slog.Logger, opts Options, now func() time.Time) http.Handler {
	if streams == nil {
		streams = emptyLister{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{streams: streams, logger: logger, viewers: opts.Viewers, retention: opts.Retention, now: now}

	static, err := fs.Sub(staticFiles, "static")
	if err != nil { // cannot happen: the directory is embedded
		static = staticFiles
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /streams", h.list)
	mux.HandleFunc("GET /streams/events", h.events)
	mux.HandleFunc("GET /streams/{stream}", h.stream)
	mux.HandleFunc("GET /play/{stream}", h.play)
	mux.Handle("GET /static/", noDirListing(files))
	return securityHeaders(mux)
}

type handler struct {
	streams   Lister
	logger    *slog.Logger
	viewers   ViewerCounter // nil: no counts
	retention Retention     // nil: no window
	now       func() time.Time
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// noDirListing answers 404 for directory paths under /static/.
func noDirListing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/static/" || p[len(p)-1] == '/' {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

type emptyLister struct{}

func (emptyLister) Live() []bus.CatalogEntry { return nil }

func (emptyLister) Subscribe() (<-chan bus.CatalogEntry, func()) {
	// A channel that never delivers and is never closed: the events stream
	// stays open with heartbeats until the client leaves.
	return make(chan bus.CatalogEntry), func() {}
}
