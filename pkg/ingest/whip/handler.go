package whip

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/bearer"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// Defaults of Config.
const (
	DefaultIdle          = ingest.DefaultIdleTimeout
	DefaultGatherTimeout = 5 * time.Second
	DefaultBodyTimeout   = 10 * time.Second
	DefaultAllowOrigin   = "*"
	// DefaultKeyframeInterval is the longest a publication goes without a
	// keyframe before it asks the publisher for one.
	DefaultKeyframeInterval = 2 * time.Second
)

// Header values.
const (
	mediaTypeSDP    = "application/sdp"
	allowEndpoint   = "OPTIONS, POST"
	allowResource   = "OPTIONS, PATCH, DELETE"
	corsMethods     = "POST, PATCH, DELETE, OPTIONS"
	corsHeaders     = "Authorization, Content-Type, If-Match"
	exposeHeaders   = "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, WWW-Authenticate"
	corsMaxAge      = "86400"
	sourceKind      = "whip"
	resourceIDBytes = 16
)

// Config configures a Handler.
type Config struct {
	// Tokens, when not empty, are the accepted Bearer tokens (the ingest
	// tokens).
	Tokens []string
	// Idle ends a publication that sends nothing for that long (default
	// 30 s), also one whose connection never comes up.
	Idle time.Duration
	// AllowOrigin is the CORS Access-Control-Allow-Origin: "*" (default), or
	// a comma-separated list of origins.
	AllowOrigin string
	// GatherTimeout bounds candidate gathering for an answer (default 5 s).
	GatherTimeout time.Duration
	// BodyTimeout bounds the reading of a request body (default 10 s).
	BodyTimeout time.Duration
	// KeyframeInterval: when the publisher sent no keyframe for that long,
	// it is asked for one (PLI). Browsers send keyframes only when asked,
	// and a viewer starts at the last one. Default 2 s; negative: never.
	KeyframeInterval time.Duration
	// KeyframeRequests, when set, delivers the viewers' requests for a
	// keyframe of a stream: each makes its publication send a PLI.
	KeyframeRequests KeyframeRequests
	// SettingEngine tunes the PeerConnections (ports, NAT 1:1 addresses,
	// network types); nil uses pion's defaults.
	SettingEngine *webrtc.SettingEngine
	// Logger; nil discards.
	Logger *slog.Logger
}

// Handler serves WHIP under PathPrefix, publishing into an
// ingest.Publications.
type Handler struct {
	cfg    Config
	pubs   *ingest.Publications
	tokens bearer.Set
	log    *slog.Logger
	ctx    context.Context // of the publications; canceled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	resources map[string]*resource // by id
	closed    bool
	running   sync.WaitGroup
}

// NewHandler returns a Handler running its publications in pubs.
func NewHandler(pubs *ingest.Publications, cfg Config) *Handler {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = DefaultGatherTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.AllowOrigin == "" {
		cfg.AllowOrigin = DefaultAllowOrigin
	}
	switch {
	case cfg.KeyframeInterval == 0:
		cfg.KeyframeInterval = DefaultKeyframeInterval
	case cfg.KeyframeInterval < 0:
		cfg.KeyframeInterval = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Handler{
		cfg: cfg, pubs: pubs, tokens: bearer.NewSet(cfg.Tokens...), log: cfg.Logger,
		ctx: ctx, cancel: cancel, resources: make(map[string]*resource),
	}
}

// Close refuses new publishers, ends the publications now (their
// PeerConnections are closed) and waits until they have ended.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.running.Wait()
	return nil
}

// Publishers returns how many WHIP resources exist.
func (h *Handler) Publishers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.resources)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	if r.ContentLength != 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.BodyTimeout))
	}
	stream, id, err := splitPath(r)
	if err != nil {
		httpError(w, err)
		return
	}
	if id == "" {
		h.serveEndpoint(w, r, stream)
		return
	}
	h.serveResource(w, r, stream, id)
}

// splitPath returns the stream and the resource id ("" for the endpoint)
// of a WHIP path.
func splitPath(r *http.Request) (stream, id string, err error) {
	raw := strings.ToLower(r.URL.RawPath)
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "", "", fmt.Errorf("%w: encoded slash in the WHIP path", bus.ErrInvalidName)
	}
	for seg := range strings.SplitSeq(r.URL.Path, "/") {
		if seg == "." || seg == ".." {
			return "", "", fmt.Errorf("%w: dot segment in the WHIP path", bus.ErrInvalidName)
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) > 2 || parts[0] == "" || len(parts) == 2 && parts[1] == "" {
		return "", "", fmt.Errorf("%w at %q: use %s{stream}", errNotFound, r.URL.Path, PathPrefix)
	}
	if err := bus.ValidateName(parts[0]); err != nil {
		return "", "", fmt.Errorf("whip: %w", err)
	}
	if len(parts) == 2 {
		id = parts[1]
	}
	return parts[0], id, nil
}

// cors adds the CORS headers to a cross-origin request.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	allow := ""
	for _, o := range strings.Split(h.cfg.AllowOrigin, ",") {
		if o = strings.TrimSpace(o); o == "*" || o == origin {
			allow = o
			break
		}
	}
	if allow == "" {
		return
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		hdr.Add("Vary", "Origin")
	}
	hdr.Set("Access-Control-Expose-Headers", exposeHeaders)
}

// options answers OPTIONS (CORS preflight or not); it needs no token.
func options(w http.ResponseWriter, r *http.Request, allow string) {
	hdr := w.Header()
	hdr.Set("Allow", allow)
	if allow == allowEndpoint {
		hdr.Set("Accept-Post", mediaTypeSDP)
	} else {
		hdr.Set("Accept-Patch", sdpfrag.MediaType)
	}
	if r.Header.Get("Access-Control-Request-Method") != "" && hdr.Get("Access-Control-Allow-Origin") != "" {
		hdr.Set("Access-Control-Allow-Methods", corsMethods)
		hdr.Set("Access-Control-Allow-Headers", corsHeaders)
		hdr.Set("Access-Control-Max-Age", corsMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) authorize(r *http.Request) error {
	if !h.tokens.Accepts(bearer.FromHeader(r)) {
		return ingest.ErrUnauthorized
	}
	return nil
}

func methodNotAllowed(w http.ResponseWriter, method, allow string) {
	w.Header().Set("Allow", allow)
	httpError(w, fmt.Errorf("%w: %s (allowed: %s)", errMethod, method, allow))
}

// serveEndpoint serves /whip/{stream}.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, stream string) {
	switch r.Method {
	case http.MethodOptions:
		options(w, r, allowEndpoint)
	case http.MethodPost:
		if err := h.post(w, r, stream); err != nil {
			code := httpError(w, err)
			level := slog.LevelInfo
			if code >= 500 {
				level = slog.LevelWarn
			}
			h.log.Log(r.Context(), level, "WHIP offer refused", "stream", stream, "remote", r.RemoteAddr, "status", code, "err", err)
		}
	default:
		methodNotAllowed(w, r.Method, allowEndpoint)
	}
}

// post creates a publication from the offer of r.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, stream string) error {
	if err := h.authorize(r); err != nil {
		return err
	}
	if err := checkContentType(r.Header.Get("Content-Type"), mediaTypeSDP); err != nil {
		return err
	}
	body, err := readBody(w, r, MaxOfferSize)
	if err != nil {
		return err
	}
	o, err := parseOffer(body)
	if err != nil {
		return err
	}
	res, answer, err := h.start(r.Context(), stream, r.RemoteAddr, o, string(body))
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", mediaTypeSDP)
	hdr.Set("Location", res.location())
	hdr.Set("ETag", res.currentETag())
	hdr.Set("Accept-Patch", sdpfrag.MediaType)
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	return nil
}

// serveResource serves /whip/{stream}/{id}.
func (h *Handler) serveResource(w http.ResponseWriter, r *http.Request, stream, id string) {
	if r.Method == http.MethodOptions {
		options(w, r, allowResource)
		return
	}
	if r.Method != http.MethodPatch && r.Method != http.MethodDelete {
		methodNotAllowed(w, r.Method, allowResource)
		return
	}
	if err := h.authorize(r); err != nil {
		httpError(w, err)
		return
	}
	h.mu.Lock()
	res := h.resources[id]
	h.mu.Unlock()
	if res == nil || res.stream != stream {
		httpError(w, fmt.Errorf("%w: %s", errNotFound, r.URL.Path))
		return
	}
	switch r.Method {
	case http.MethodDelete:
		h.remove(res)
		res.end()
		res.log.Info("WHIP publication deleted by the publisher")
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		if err := h.patch(w, r, res); err != nil {
			code := httpError(w, err)
			res.log.Debug("WHIP PATCH refused", "status", code, "err", err)
		}
	}
}

// remove takes res out of the table: its Location is gone.
func (h *Handler) remove(res *resource) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.resources[res.id] == res {
		delete(h.resources, res.id)
	}
}

// checkContentType returns errContentType unless ct is want (parameters
// ignored).
func checkContentType(ct, want string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, want) {
		return fmt.Errorf("%w: %q, want %s", errContentType, ct, want)
	}
	return nil
}

// readBody reads at most limit bytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return nil, fmt.Errorf("%w: limit %d bytes", errTooLarge, limit)
	case err != nil:
		return nil, fmt.Errorf("%w: reading the body: %w", errBadOffer, err)
	case len(body) == 0:
		return nil, fmt.Errorf("%w: empty body", errBadOffer)
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return body, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns 128 random bits in lower-case base32.
func newID() string {
	var b [resourceIDBytes]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

func newETag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return `"` + hex.EncodeToString(b[:]) + `"`
}
