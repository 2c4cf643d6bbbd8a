package whep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// Header values.
const (
	allowEndpoint   = "OPTIONS, GET, HEAD, POST"
	allowSession    = "OPTIONS, GET, HEAD, PATCH, DELETE"
	corsMethods     = "GET, POST, PATCH, DELETE, OPTIONS"
	corsHeaders     = "Authorization, Content-Type, If-Match"
	exposeHeaders   = "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, WWW-Authenticate"
	corsMaxAge      = "86400"
	headerAcceptSDP = mediaTypeSDP
)

// codeClientGone is the code label of whepcast_whep_requests_total for a
// request whose client went away before its answer (nginx's 499).
const codeClientGone = "499"

// route dispatches /whep/{stream}, /whep/{stream}/{session} and the
// session's events (/whep/{stream}/{session}/events[/{id}]).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	// The body must arrive within BodyTimeout: this bounds readBody and,
	// when a handler answers without reading it, net/http's discarding of
	// it (which then fails and closes the connection instead of waiting).
	if r.ContentLength != 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/whep/")
	parts := strings.Split(rest, "/")
	if ok && (len(parts) == 3 || len(parts) == 4 && parts[3] != "") && parts[2] == eventsSegment && parts[0] != "" && parts[1] != "" {
		ref := eventsRef{Stream: parts[0], Session: parts[1]}
		if len(parts) == 4 {
			ref.ID = parts[3]
		}
		status := s.events.serve(w, r, ref)
		s.metrics.requests.WithLabelValues(methodLabel(r.Method), strconv.Itoa(status)).Inc()
		return
	}
	var resp response
	switch {
	case ok && len(parts) == 3 && parts[2] == seekSegment && parts[0] != "" && parts[1] != "":
		resp = s.serveSeek(w, r, parts[0], parts[1])
	case !ok || parts[0] == "" || len(parts) > 2 || len(parts) == 2 && parts[1] == "":
		resp = errorResponse(fmt.Errorf("%w: no WHEP resource at %q", errNoResource, r.URL.Path))
	case len(parts) == 1:
		resp = s.serveEndpoint(w, r, parts[0])
	default:
		resp = s.serveSession(w, r, parts[0], parts[1])
	}
	code := strconv.Itoa(resp.Status)
	if r.Context().Err() != nil {
		// The client went away before its answer (most often a POST held
		// for a stream that is not live): not an overload, whatever the
		// status its cause maps to.
		code = codeClientGone
	}
	resp.write(w)
	s.metrics.requests.WithLabelValues(methodLabel(r.Method), code).Inc()
}

func methodLabel(m string) string {
	switch m {
	case http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodGet, http.MethodHead:
		return m
	}
	return "other"
}

// cors adds the CORS response headers to every cross-origin request.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if allow := s.allowOrigin(origin); allow != "" {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", allow)
				if allow != "*" {
					h.Add("Vary", "Origin")
				}
				h.Set("Access-Control-Expose-Headers", exposeHeaders)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin:
// "*" when AllowOrigin is "*", origin when AllowOrigin (a comma-separated
// list) holds it, "" otherwise.
func (s *Server) allowOrigin(origin string) string {
	for _, o := range strings.Split(s.cfg.AllowOrigin, ",") {
		switch o = strings.TrimSpace(o); o {
		case "*":
			return "*"
		case origin:
			return origin
		}
	}
	return ""
}

// options answers OPTIONS, CORS preflight or not. It needs no token.
func options(w http.ResponseWriter, r *http.Request, allow string, endpoint bool) response {
	h := http.Header{}
	h.Set("Allow", allow)
	if endpoint {
		h.Set("Accept-Post", headerAcceptSDP)
	} else {
		h.Set("Accept-Patch", sdpfrag.MediaType)
	}
	if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" &&
		w.Header().Get("Access-Control-Allow-Origin") != "" {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
	return response{Status: http.StatusNoContent, Header: h}
}

// noContent answers GET and HEAD of the endpoint and of a session: 204,
// whatever the stream or session (draft-ietf-wish-whep-03 reserves them, a
// success without content). It needs no token and reveals nothing.
func noContent() response {
	return response{Status: http.StatusNoContent, Header: http.Header{}}
}

func methodNotAllowed(method, allow string) response {
	resp := errorResponse(fmt.Errorf("%w: %s (allowed: %s)", errMethodNotAllowed, method, allow))
	resp.Header.Set("Allow", allow)
	return resp
}

// serveEndpoint serves /whep/{stream}.
func (s *Server) serveEndpoint(w http.ResponseWriter, r *http.Request, stream string) response {
	switch r.Method {
	case http.MethodOptions:
		return options(w, r, allowEndpoint, true)
	case http.MethodGet, http.MethodHead:
		return noContent()
	case http.MethodPost:
		resp, err := s.post(w, r, stream)
		if err != nil {
			if errors.Is(err, errClientGone) {
				s.logger.Debug("POST abandoned by the client", "stream", stream, "err", err)
			} else if st, _ := statusOf(err); st >= 500 {
				s.logger.Warn("POST failed", "stream", stream, "status", st, "err", err)
			} else {
				s.logger.Debug("POST refused", "stream", stream, "status", st, "err", err)
			}
			return errorResponse(err)
		}
		return resp
	default:
		return methodNotAllowed(r.Method, allowEndpoint)
	}
}

// post creates a session.
func (s *Server) post(w http.ResponseWriter, r *http.Request, stream string) (response, error) {
	if err := s.tokens.check(r); err != nil {
		return response{}, err
	}
	if err := bus.ValidateName(stream); err != nil {
		return response{}, err
	}
	if err := checkContentType(r, mediaTypeSDP); err != nil {
		return response{}, err
	}
	if s.sessions.isDraining() {
		return response{}, errDraining
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return response{}, err
	}
	o, err := parseOffer(body)
	if err != nil {
		return response{}, err
	}
	// ?start= plays the stream's log from that time (see timeshift.go).
	at, err := parseStart(r.URL.Query().Get("start"), time.Now())
	if err != nil {
		return response{}, err
	}
	var entry bus.CatalogEntry
	if at.IsZero() {
		entry, err = s.waitLive(r.Context(), stream)
	} else {
		entry, err = s.shiftedEntry(r.Context(), stream)
	}
	if err != nil {
		return response{}, err
	}
	ss, answer, err := s.createSession(r.Context(), entry, o, at)
	if err != nil {
		return response{}, err
	}
	h := http.Header{}
	h.Set("Content-Type", mediaTypeSDP)
	h.Set("Location", locationOf(ss.stream, ss.id))
	h.Set("ETag", ss.currentETag())
	h.Set("Accept-Patch", sdpfrag.MediaType)
	h.Set("Cache-Control", "no-store")
	for _, l := range s.links {
		h.Add("Link", l)
	}
	h.Add("Link", eventsLink(locationOf(ss.stream, ss.id)))
	return response{Status: http.StatusCreated, Header: h, Body: []byte(answer)}, nil
}

// checkContentType returns errUnsupportedType unless r's Content-Type is
// want (parameters ignored).
func checkContentType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, want) {
		return fmt.Errorf("%w: %q, want %s", errUnsupportedType, ct, want)
	}
	return nil
}

// readBody reads at most MaxOfferSize bytes, within the read deadline route
// set. Once the whole body is in, the deadline is lifted: a held POST must
// not lose its connection (net/http ends a request whose connection read
// fails, and it reads in the background once the body is done).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxOfferSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, r.ContentLength, MaxOfferSize)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
	if err == nil {
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return nil, fmt.Errorf("%w: limit %d bytes", errTooLarge, MaxOfferSize)
	case err != nil:
		return nil, fmt.Errorf("%w: reading body: %w", errBadRequest, err)
	}
	return body, nil
}

// waitLive returns the catalog entry of stream once it is live, holding the
// request (bounded by MaxWaiting and WaitTimeout) while it is not.
func (s *Server) waitLive(ctx context.Context, stream string) (bus.CatalogEntry, error) {
	if e, ok := s.catalog.Get(stream); ok && e.Playable() {
		return e, nil
	}
	holdCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	release, err := s.sessions.hold(cancel)
	if err != nil {
		if errors.Is(err, errNotLive) {
			return bus.CatalogEntry{}, fmt.Errorf("%w: stream %q", errNotLive, stream)
		}
		return bus.CatalogEntry{}, err
	}
	defer release()
	waitCtx, cancelWait := context.WithTimeoutCause(holdCtx, s.cfg.WaitTimeout, errNotLive)
	defer cancelWait()
	e, err := s.catalog.Wait(waitCtx, stream)
	if err == nil {
		return e, nil
	}
	cause := context.Cause(waitCtx)
	switch {
	case ctx.Err() != nil:
		return bus.CatalogEntry{}, fmt.Errorf("%w: %w", errClientGone, ctx.Err())
	case errors.Is(cause, errNotLive):
		return bus.CatalogEntry{}, fmt.Errorf("%w: stream %q did not go live within %v", errNotLive, stream, s.cfg.WaitTimeout)
	case errors.Is(cause, errDraining), errors.Is(cause, ErrClosed):
		return bus.CatalogEntry{}, cause
	default:
		return bus.CatalogEntry{}, fmt.Errorf("waiting for stream %q: %w", stream, err)
	}
}

// serveSession serves /whep/{stream}/{session}, forwarding PATCH and DELETE
// to the node owning the session with the caller's credential: the owner's
// tokens authorize them, never this node's.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, stream, id string) response {
	switch r.Method {
	case http.MethodOptions:
		return options(w, r, allowSession, false)
	case http.MethodGet, http.MethodHead:
		return noContent()
	case http.MethodPatch, http.MethodDelete:
	default:
		return methodNotAllowed(r.Method, allowSession)
	}
	node, ok := sessionNode(id)
	forwarded := ok && node != s.cfg.NodeID && s.fwd != nil
	if !forwarded {
		if err := s.tokens.check(r); err != nil {
			return errorResponse(err)
		}
	}
	req := sessionRequest{
		Method:      r.Method,
		Stream:      stream,
		Session:     id,
		Token:       credential(r),
		ContentType: r.Header.Get("Content-Type"),
		IfMatch:     r.Header.Values("If-Match"),
	}
	if r.Method == http.MethodPatch {
		body, err := s.readBody(w, r)
		if err != nil {
			return errorResponse(err)
		}
		req.Body = body
	}
	if !ok || bus.ValidateName(stream) != nil {
		return errorResponse(fmt.Errorf("%w: %q", errSessionNotFound, id))
	}
	if node == s.cfg.NodeID {
		return s.sessionOp(r.Context(), req)
	}
	if s.fwd == nil {
		return errorResponse(fmt.Errorf("%w: %q belongs to node %q and this node has no bus", errSessionNotFound, id, node))
	}
	return s.fwd.forward(r.Context(), node, req)
}
