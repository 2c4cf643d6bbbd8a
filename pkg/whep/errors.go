package whep

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// Errors returned by New and Close.
var (
	// ErrInvalidConfig is returned by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("whep: invalid config")
	// ErrClosed is returned by a Server used after Close.
	ErrClosed = errors.New("whep: server closed")
)

// Errors of request handling; statusOf maps each to its HTTP status.
var (
	errUnauthorized       = errors.New("missing or invalid bearer token")
	errBadRequest         = errors.New("bad request")
	errBadOffer           = errors.New("malformed SDP offer")
	errUnsupportedType    = errors.New("unsupported Content-Type")
	errTooLarge           = errors.New("request body too large")
	errMethodNotAllowed   = errors.New("method not allowed")
	errDraining           = errors.New("server is draining, try another node")
	errNotLive            = errors.New("stream is not live")
	errTooManyWaiting     = errors.New("too many requests are waiting for streams")
	errTooManySessions    = errors.New("session limit reached")
	errNotPlayable        = errors.New("nothing to play")
	errSessionNotFound    = errors.New("session not found")
	errNoResource         = errors.New("not found")
	errPreconditionFailed = errors.New("If-Match does not match the session's ETag")
	errPreconditionNeeded = errors.New("an ICE restart needs If-Match")
	errUnprocessable      = errors.New("unprocessable fragment")
	errOwnerUnavailable   = errors.New("the node owning the session did not answer")
	errClientGone         = errors.New("client went away")
	errIncompatible       = errors.New("offer cannot be answered")
)

// statusOf maps an error to its HTTP status and Retry-After (seconds, 0 for
// none). It is the only place that makes that choice: every client fault is a
// 4xx, and only faults of the server (or of the node owning a session) are
// 5xx.
func statusOf(err error) (status, retryAfter int) {
	var maxBytes *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK, 0
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, 0
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed, 0
	case errors.Is(err, errUnsupportedType):
		return http.StatusUnsupportedMediaType, 0
	case errors.As(err, &maxBytes), errors.Is(err, errTooLarge), errors.Is(err, sdpfrag.ErrLimit):
		return http.StatusRequestEntityTooLarge, 0
	case errors.Is(err, bus.ErrInvalidName), errors.Is(err, errBadRequest), errors.Is(err, errBadOffer),
		errors.Is(err, sdpfrag.ErrSyntax):
		return http.StatusBadRequest, 0
	case errors.Is(err, errSessionNotFound), errors.Is(err, errNoResource):
		return http.StatusNotFound, 0
	case errors.Is(err, errOutOfRange):
		return http.StatusRequestedRangeNotSatisfiable, 0
	case errors.Is(err, errPreconditionFailed):
		return http.StatusPreconditionFailed, 0
	case errors.Is(err, errPreconditionNeeded):
		return http.StatusPreconditionRequired, 0
	case errors.Is(err, errNotLive), errors.Is(err, relay.ErrStreamEnded), errors.Is(err, relay.ErrTracksChanged):
		return http.StatusConflict, retryNotLive
	case errors.Is(err, errNotPlayable), errors.Is(err, errUnprocessable), errors.Is(err, errIncompatible),
		errors.Is(err, relay.ErrNoTracks), errors.Is(err, relay.ErrUnsupportedCodec):
		return http.StatusUnprocessableEntity, 0
	case errors.Is(err, errDraining), errors.Is(err, ErrClosed), errors.Is(err, relay.ErrClosed):
		return http.StatusServiceUnavailable, retryDraining
	case errors.Is(err, errTooManyWaiting), errors.Is(err, errTooManySessions), errors.Is(err, errOwnerUnavailable),
		errors.Is(err, relay.ErrSubscription),
		errors.Is(err, errClientGone), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, retryOverload
	default:
		return http.StatusInternalServerError, 0
	}
}

// response is what a request gets: built locally, or relayed from the node
// that owns a session.
type response struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// errorResponse turns err into a response with the headers its status needs
// and a text body. A 500's body hides the error, which is logged instead.
func errorResponse(err error) response {
	status, retry := statusOf(err)
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="whepcast"`)
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal server error"
	}
	return response{Status: status, Header: h, Body: []byte(msg + "\n")}
}

// write sends r on w, after any headers already set on w (CORS).
func (r response) write(w http.ResponseWriter) {
	for k, v := range r.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.Status)
	if len(r.Body) > 0 {
		_, _ = w.Write(r.Body)
	}
}
