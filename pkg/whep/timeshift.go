package whep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

// Time-shifted playback: POST /whep/{stream}?start=T and
// POST {Location}/seek {"start":T}.
const (
	// startLive is the start that means the live edge.
	startLive = "live"
	// seekSegment names the seek resource under a session's Location.
	seekSegment = "seek"
	// opSeek is the sessionRequest method of a seek (POST on the seek
	// resource), here or forwarded to the session's node.
	opSeek = "SEEK"
	// allowSeek is the Allow header of the seek resource.
	allowSeek = "OPTIONS, POST"
	// maxSeekBody bounds the JSON body of a seek.
	maxSeekBody = 1 << 10
)

// errOutOfRange is the answer to a start outside the stream's retention
// (416); the message names the window the stream holds.
var errOutOfRange = errors.New("start outside the stream's retention")

// parseStart reads a start time: "live" (or empty: the live edge, the zero
// time), a negative Go duration relative to now ("-30s", "-1h30m") or an
// absolute RFC 3339 time. A malformed time or one in the future is an
// errBadRequest (400).
func parseStart(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "" || s == startLive:
		return time.Time{}, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: start %q: want \"live\", a negative duration (-30s, -2m) or an RFC 3339 time", errBadRequest, s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: start %q: want \"live\", a negative duration (-30s, -2m) or an RFC 3339 time", errBadRequest, s)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%w: start %s is in the future", errBadRequest, t.UTC().Format(time.RFC3339Nano))
	}
	return t, nil
}

// timeShiftMedia is Media that also plays a stream's log from a past time
// (FromRelay's does).
type timeShiftMedia interface {
	// JoinAt is Join from the keyframe at or before at, played in real
	// time from the stream's log.
	JoinAt(ctx context.Context, ann bus.Announcement, want relay.Want, at time.Time) (Viewer, error)
	// Announcement returns the latest announcement stored in the stream's
	// log, for a stream the catalog no longer lists.
	Announcement(ctx context.Context, stream string) (bus.Announcement, error)
}

// seekViewer is a Viewer that moves within its stream (a *relay.Viewer).
type seekViewer interface {
	// Seek moves the viewer to the keyframe at or before at, or to the
	// live edge when at is zero.
	Seek(ctx context.Context, at time.Time) error
}

// positionViewer is a Viewer that tells where it plays (a *relay.Viewer).
type positionViewer interface {
	Position() relay.Position
}

func (rm relayMedia) JoinAt(ctx context.Context, ann bus.Announcement, want relay.Want, at time.Time) (Viewer, error) {
	v, err := rm.r.JoinAt(ctx, ann, want, at)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (rm relayMedia) Announcement(ctx context.Context, stream string) (bus.Announcement, error) {
	return rm.r.Announcement(ctx, stream)
}

// shiftedEntry returns what a time-shifted session of stream plays: the
// catalog's entry when it lists the stream with tracks (live or ended),
// else one made of the latest announcement stored in the stream's log. A
// stream with neither is errNoResource (404).
func (s *Server) shiftedEntry(ctx context.Context, stream string) (bus.CatalogEntry, error) {
	if e, ok := s.catalog.Get(stream); ok && len(e.Tracks.Tracks) > 0 {
		return e, nil
	}
	tm, ok := s.media.(timeShiftMedia)
	if !ok {
		return bus.CatalogEntry{}, fmt.Errorf("%w: this server does not play streams back", errNotPlayable)
	}
	ann, err := tm.Announcement(ctx, stream)
	switch {
	case errors.Is(err, bus.ErrNotFound):
		return bus.CatalogEntry{}, fmt.Errorf("%w: stream %q is not stored", errNoResource, stream)
	case err != nil:
		return bus.CatalogEntry{}, fmt.Errorf("stream %q: %w", stream, err)
	case len(ann.Tracks) == 0:
		return bus.CatalogEntry{}, fmt.Errorf("%w: stream %q has no tracks", errNoResource, stream)
	}
	return bus.CatalogEntry{Stream: stream, Epoch: ann.Epoch, State: bus.StateEnded, Tracks: ann}, nil
}

// joinAt joins the viewer of a session: live when at is zero, else
// time-shifted.
func (s *Server) joinAt(ctx context.Context, ann bus.Announcement, want relay.Want, at time.Time) (Viewer, error) {
	if at.IsZero() {
		return s.media.Join(ctx, ann, want)
	}
	tm, ok := s.media.(timeShiftMedia)
	if !ok {
		return nil, fmt.Errorf("%w: this server does not play streams back", errNotPlayable)
	}
	v, err := tm.JoinAt(ctx, ann, want, at)
	return v, shiftError(err)
}

// shiftError maps the errors of reading a stream's log to the WHEP errors:
// a time outside the retention is errOutOfRange (416, naming the window),
// a stream not stored errNoResource (404).
func shiftError(err error) error {
	var re *bus.RangeError
	switch {
	case errors.As(err, &re) && re.First.IsZero():
		return fmt.Errorf("%w: stream %q holds no keyframe", errOutOfRange, re.Stream)
	case errors.As(err, &re):
		return fmt.Errorf("%w: stream %q holds %s to %s", errOutOfRange, re.Stream,
			re.First.UTC().Format(time.RFC3339Nano), re.Last.UTC().Format(time.RFC3339Nano))
	case errors.Is(err, bus.ErrNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: %w", errNoResource, err)
	}
	return err
}

// serveSeek serves POST /whep/{stream}/{session}/seek, forwarded to the
// node owning the session like PATCH and DELETE (the owner checks the
// token).
func (s *Server) serveSeek(w http.ResponseWriter, r *http.Request, stream, id string) response {
	switch r.Method {
	case http.MethodOptions:
		resp := options(w, r, allowSeek, false)
		resp.Header.Del("Accept-Patch")
		return resp
	case http.MethodPost:
	default:
		return methodNotAllowed(r.Method, allowSeek)
	}
	node, ok := sessionNode(id)
	forwarded := ok && node != s.cfg.NodeID && s.fwd != nil
	if !forwarded {
		if err := s.tokens.check(r); err != nil {
			return errorResponse(err)
		}
	}
	if r.ContentLength > maxSeekBody {
		return errorResponse(fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, r.ContentLength, maxSeekBody))
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return errorResponse(err)
	}
	if len(body) > maxSeekBody {
		return errorResponse(fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, len(body), maxSeekBody))
	}
	req := sessionRequest{
		Method:      opSeek,
		Stream:      stream,
		Session:     id,
		Token:       credential(r),
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
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

// seekRequest is the body of a seek.
type seekRequest struct {
	Start *string `json:"start"`
}

// seek moves the session's viewer (and so its PeerConnection's media) to
// the start of req's body: 204, or 400 (malformed), 404 (session or
// stream gone), 416 (outside the retention, naming the window).
func (ss *session) seek(ctx context.Context, req sessionRequest) (response, error) {
	if req.ContentType != "" {
		if err := checkContentTypeValue(req.ContentType, mediaTypeJSON); err != nil {
			return response{}, err
		}
	}
	var body seekRequest
	if err := json.Unmarshal(req.Body, &body); err != nil || body.Start == nil {
		return response{}, fmt.Errorf("%w: want a JSON body {\"start\": \"-10s\" | RFC 3339 time | \"live\"}", errBadRequest)
	}
	at, err := parseStart(*body.Start, time.Now())
	if err != nil {
		return response{}, err
	}
	sv, ok := ss.viewer.(seekViewer)
	if !ok {
		return response{}, fmt.Errorf("%w: this session cannot seek", errNotPlayable)
	}
	select {
	case <-ss.done:
		return response{}, fmt.Errorf("%w: %q", errSessionNotFound, ss.id)
	default:
	}
	if err := sv.Seek(ctx, at); err != nil {
		return response{}, shiftError(err)
	}
	where := *body.Start
	ss.logger.Info("session sought", "start", where)
	return response{Status: http.StatusNoContent, Header: http.Header{}}, nil
}

// shifted reports whether the session plays its stream's log rather than
// the live feed.
func (ss *session) shifted() bool {
	pv, ok := ss.viewer.(positionViewer)
	return ok && !pv.Position().Live
}
