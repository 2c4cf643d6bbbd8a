package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/whepcast/whepcast/pkg/bearer"
	"github.com/whepcast/whepcast/pkg/bus"
)

// PathPrefix is the path under which HTTPHandler serves, /ingest/{stream}.
const PathPrefix = "/ingest/"

// HTTPHandler serves PUT and POST /ingest/{stream}: the request body,
// MPEG-TS of any length (chunked or not), is published as stream until it
// ends (see Publications.Ingest). The response comes when the publication
// ends: 200 with its Summary as text, or the status of StatusCode with the
// error. Other methods get 405; a missing or wrong Bearer token (when tokens
// are configured) 401; an invalid stream name, or a path with dot segments
// or an encoded slash, 400 before anything is created (never a redirect, see
// InFrontOf); a body that is empty or not MPEG-TS 400. A body that sends
// nothing for HTTPConfig.IdleTimeout ends its publication (ErrSource, 400).
type HTTPHandler struct {
	pubs   *Publications
	tokens bearer.Set
	idle   time.Duration
	log    *slog.Logger
}

// HTTPConfig configures an HTTPHandler.
type HTTPConfig struct {
	// Tokens, when not empty, are the accepted Bearer tokens: requests must
	// carry "Authorization: Bearer T" with T one of them.
	Tokens []string
	// IdleTimeout ends a publication whose body sends nothing for that long
	// (default 30 s; a negative value disables it).
	IdleTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultIdleTimeout is the default HTTPConfig.IdleTimeout.
const DefaultIdleTimeout = 30 * time.Second

// NewHTTPHandler returns an HTTPHandler running publications in pubs.
func NewHTTPHandler(pubs *Publications, cfg HTTPConfig) *HTTPHandler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	return &HTTPHandler{pubs: pubs, tokens: bearer.NewSet(cfg.Tokens...), idle: cfg.IdleTimeout, log: cfg.Logger}
}

// refuse answers a request whose body will not be read, at once: by default
// the HTTP/1 server first reads up to 256 KiB of an unread body before it
// writes a response, which a real-time publisher takes seconds to send. The
// connection is closed after the answer, since the body is left unread.
func refuse(w http.ResponseWriter, msg string, code int) {
	_ = http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
}

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		w.Header().Set("Allow", "PUT, POST")
		refuse(w, "method not allowed: use PUT or POST", http.StatusMethodNotAllowed)
		return
	}
	if !h.tokens.Accepts(bearer.FromHeader(r)) {
		h.log.Info("ingest unauthorized", "path", r.URL.Path, "remote", r.RemoteAddr, "has_token", r.Header.Get("Authorization") != "")
		challenge := `Bearer realm="whepcast ingest"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		refuse(w, ErrUnauthorized.Error(), http.StatusUnauthorized)
		return
	}
	if msg := pathProblem(r.URL); msg != "" {
		h.log.Debug("ingest rejected", "path", r.URL.EscapedPath(), "remote", r.RemoteAddr, "err", msg)
		refuse(w, msg, http.StatusBadRequest)
		return
	}
	stream, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		refuse(w, "404 page not found", http.StatusNotFound)
		return
	}
	if err := bus.ValidateName(stream); err != nil {
		h.log.Debug("ingest rejected", "stream", stream, "remote", r.RemoteAddr, "err", err)
		refuse(w, err.Error(), http.StatusBadRequest)
		return
	}

	body := &deadlineBody{r: r.Body, rc: http.NewResponseController(w), idle: h.idle}
	// A server ReadTimeout must not cut a long ingest; an error means the
	// writer does not support deadlines (then neither idle timeout nor
	// Interrupt work, and only the end of the body ends the publication).
	_ = body.rc.SetReadDeadline(time.Time{})
	src := Source{Kind: "http", Remote: r.RemoteAddr, Body: body, Interrupt: body.interrupt}
	// Not r.Context(): net/http cancels it when the client closes the
	// connection, which ffmpeg does right after the last byte of the body,
	// before the demuxer has flushed the last frames. A client that goes
	// away early makes the body read fail, which ends the publication.
	sum, err := h.pubs.Ingest(context.WithoutCancel(r.Context()), stream, src)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		// The body may not have been read to its end: answer without
		// reading it first (see refuse), and do not reuse the connection.
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Connection", "close")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		var retry interface{ RetryAfter() time.Duration } // a limit's refusal (lifecycle.LimitError)
		if errors.As(err, &retry) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.RetryAfter().Round(time.Second)/time.Second))))
		}
		w.WriteHeader(StatusCode(err))
		fmt.Fprintf(w, "%v\n%v\n", err, sum)
		return
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "%v\n", sum)
}

// InFrontOf returns a handler that passes the requests of ingest paths to h
// as they came and every other request to next (an http.ServeMux, say). A
// ServeMux would answer a path with dot segments ("/ingest/a/../ref") with a
// redirect to its cleaned form, which a client that follows redirects would
// then publish to; h refuses such a path with 400.
func (h *HTTPHandler) InFrontOf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isIngestPath(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isIngestPath reports whether p is under PathPrefix, or would be once
// cleaned.
func isIngestPath(p string) bool {
	return strings.HasPrefix(p, PathPrefix) || strings.HasPrefix(path.Clean(p)+"/", PathPrefix)
}

// pathProblem says what is wrong with an ingest path that names a stream
// other than the one it seems to: a dot segment or an encoded slash ("" when
// nothing is).
func pathProblem(u *url.URL) string {
	raw := strings.ToLower(u.RawPath)
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "encoded slash in the ingest path"
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "dot segment in the ingest path"
		}
	}
	return ""
}

// deadlineBody reads a request body with an idle timeout, and can be
// interrupted: both through the connection's read deadline. Ending the
// read of the body ends the connection (the server closes it after the
// response since the body was not consumed).
type deadlineBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration

	mu          sync.Mutex
	interrupted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		b.mu.Lock()
		if !b.interrupted {
			_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
		}
		b.mu.Unlock()
	}
	return b.r.Read(p)
}

func (b *deadlineBody) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interrupted = true
	_ = b.rc.SetReadDeadline(time.Unix(1, 0))
}
