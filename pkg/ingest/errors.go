package ingest

import (
	"context"
	"errors"
	"net/http"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Errors returned by the package.
var (
	// ErrTakenOver ends a publication when another publisher of its stream starts.
	ErrTakenOver = errors.New("taken over by a new publisher of the stream")
	// ErrClosed is returned by Publications.Ingest after
	// Publications.Shutdown, and ends the publications that Shutdown stops.
	ErrClosed = errors.New("ingest is shutting down")
	// ErrUnauthorized is returned for a missing or wrong ingest token.
	ErrUnauthorized = errors.New("missing or invalid ingest token")
	// ErrPublisher wraps a failure to open or use the publication's
	// Publisher.
	ErrPublisher = errors.New("publisher failed")
	// ErrSource wraps a failure to read the source (connection reset, client
	// gone).
	ErrSource = errors.New("reading the source failed")
	// ErrStream wraps an MPEG-TS stream the demuxer cannot use.
	ErrStream = errors.New("bad MPEG-TS stream")
	// ErrNotTS wraps a body that is empty or does not start as MPEG-TS (no
	// sync byte at 188-byte spacing in its first bytes).
	ErrNotTS = errors.New("not MPEG-TS")
	// ErrLive refuses a new publisher of a live stream when takeover is
	// denied (TakeoverDeny).
	ErrLive = errors.New("the stream is live and takeover is denied")

	errInterrupted = errors.New("source interrupted")
)

// StatusCode maps an error of Publications.Ingest (or of the handler) to the HTTP
// status of the ingest response.
func StatusCode(err error) int {
	var refusal interface{ StatusCode() int } // a limit's refusal (lifecycle.LimitError)
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &refusal):
		return refusal.StatusCode()
	case errors.Is(err, bus.ErrInsufficientStorage):
		return http.StatusInsufficientStorage
	case errors.Is(err, bus.ErrInvalidName):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTakenOver), errors.Is(err, ErrLive):
		return http.StatusConflict
	case errors.Is(err, ErrClosed), errors.Is(err, ErrPublisher):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrStream):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrSource), errors.Is(err, ErrNotTS), errors.Is(err, context.Canceled):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}
