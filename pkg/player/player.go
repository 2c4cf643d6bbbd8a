// Package player serves whepcast's web pages: the list of live streams and a
// small standard WHEP player, as plain HTML, CSS and JavaScript embedded in
// the binary (no build step).
//
// # Routes
//
// Handler serves, relative to where it is mounted:
//
//	GET /                  the live streams of the catalog, updated live
//	GET /streams           the same list as JSON ([]StreamView)
//	GET /streams/events    server-sent events: "snapshot" (the full list, on
//	                       connect) then "entry" (one StreamView per catalog
//	                       change; state other than "live" means gone)
//	GET /play/{stream}     the player page of one stream (404 for a name that
//	                       bus.ValidateName rejects)
//	GET /static/{file}     the scripts and style sheet of those pages
//
// Every page links relatively (play/NAME, ../static/play.js, ../whep/NAME),
// so the handler can be mounted under a prefix with http.StripPrefix as long
// as the WHEP server sits beside it at whep/.
//
// # The player
//
// /play/{stream} is a WHEP client written against standard APIs only
// (RTCPeerConnection, fetch, getStats; requestVideoFrameCallback when the
// browser has it), so it runs in Chrome, Firefox and Safari. It POSTs an
// offer with recvonly video and audio transceivers once ICE gathering is
// complete (or after a short wait: a WHEP server returns all its candidates,
// so the client's own are not needed), resolves the Location of the 201
// against the WHEP URL and DELETEs it on pagehide or before reconnecting. It
// reconnects with exponential backoff on failure, on 409 and on 503, waiting
// at least Retry-After when the server sends it; 400, 401, 403, 405 and 415
// end in the state "failed". Query parameters: ?whep=URL to play from another
// WHEP endpoint (default ../whep/{stream}), ?token=T sent as
// "Authorization: Bearer T" on POST and DELETE.
//
// The video starts muted (so that autoplay is allowed everywhere) with an
// unmute button, under an overlay of resolution, frame rate, bitrate, packet
// loss, jitter-buffer delay and time to first frame. For tests and embedding
// the page exposes window.whepcast = {state, ttffMs, stats(), refreshStats()}
// and mirrors the state in document.body's data-state attribute:
// "connecting", "playing", "retrying" or "failed".
//
// # Security
//
// Stream names are HTML-escaped (html/template on the server, textContent in
// the scripts). Every response carries a Content-Security-Policy that allows
// scripts and styles from the same origin only (there is no inline script),
// no-referrer (a ?token= must not leak through the Referer header) and
// nosniff.
package player

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"

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

// Handler returns the pages' HTTP handler. streams may be nil (no stream is
// ever listed); logger may be nil (nothing is logged).
func Handler(streams Lister, logger *slog.Logger) http.Handler {
	if streams == nil {
		streams = emptyLister{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{streams: streams, logger: logger}

	static, err := fs.Sub(staticFiles, "static")
	if err != nil { // cannot happen: the directory is embedded
		static = staticFiles
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /streams", h.list)
	mux.HandleFunc("GET /streams/events", h.events)
	mux.HandleFunc("GET /play/{stream}", h.play)
	mux.Handle("GET /static/", noDirListing(files))
	return securityHeaders(mux)
}

type handler struct {
	streams Lister
	logger  *slog.Logger
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
