package export

import (
	"errors"
	"net/http"

	"github.com/whepcast/whepcast/pkg/bus"
)

// Errors of the package.
var (
	// ErrInvalidConfig is returned by NewHandler for a bad Config or Deps.
	ErrInvalidConfig = errors.New("invalid export configuration")
)

// Errors of request handling; statusOf maps each to its HTTP status.
var (
	errUnauthorized = errors.New("missing or invalid bearer token")
	errBadTime      = errors.New("bad time")
	errBadRange     = errors.New("bad range")
	errNoFormat     = errors.New("unknown export format (want .ts or .mp4)")
	errMethod       = errors.New("method not allowed")
	errBusy         = errors.New("too many exports in progress")
	// errH265MP4 ends an fMP4 export of H.265 video (after its 200: in
	// the trailer).
	errH265MP4 = errors.New("the video is H.265, which is exported as MPEG-TS only (.ts)")
)

// statusOf maps a request error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errBadTime), errors.Is(err, errBadRange), errors.Is(err, bus.ErrInvalidName):
		return http.StatusBadRequest
	case errors.Is(err, errNoFormat), errors.Is(err, bus.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, bus.ErrOutOfRange):
		return http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
