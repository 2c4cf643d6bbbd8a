package whip

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// Errors of the package.
var (
	// ErrUnsupportedCodecs refuses an offer without a codec the bus carries
	// (H.264 in packetization mode 1, Opus); its message names the codecs
	// offered.
	ErrUnsupportedCodecs = errors.New("no codec whepcast can publish (H.264 packetization-mode=1, Opus)")
	// ErrSimulcast refuses an offer with simulcast layers.
	ErrSimulcast = errors.New("simulcast not supported: send one layer")

	errBadOffer        = errors.New("bad SDP offer")
	errContentType     = errors.New("unsupported Content-Type")
	errTooLarge        = errors.New("request body too large")
	errNotFound        = errors.New("no such WHIP resource")
	errMethod          = errors.New("method not allowed")
	errPrecondition    = errors.New("If-Match does not match the resource's ETag")
	errPreconditionReq = errors.New("an ICE restart needs If-Match")
	errClosed          = errors.New("the WHIP endpoint is closed")
	errBadFragment     = errors.New("bad trickle-ice-sdpfrag")

	errEmptyPayload = errors.New("empty RTP payload")
	errBadPayload   = errors.New("bad H.264 RTP payload")
	errLimit        = errors.New("limit exceeded")
	errIdle         = errors.New("the publisher sent nothing for the idle timeout")
	errInterrupted  = errors.New("publication interrupted")
)

// statusOf maps an error of a request to its HTTP status.
func statusOf(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, ingest.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, bus.ErrInvalidName), errors.Is(err, errBadOffer), errors.Is(err, ErrSimulcast),
		errors.Is(err, errBadFragment), errors.Is(err, sdpfrag.ErrSyntax):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnsupportedCodecs), errors.Is(err, errContentType):
		return http.StatusUnsupportedMediaType
	case errors.As(err, &maxBytes), errors.Is(err, errTooLarge), errors.Is(err, sdpfrag.ErrLimit):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, errPreconditionReq):
		return http.StatusPreconditionRequired
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable
	default:
		return ingest.StatusCode(err)
	}
}

// httpError writes err with its status as a plain-text body.
func httpError(w http.ResponseWriter, err error) int {
	code := statusOf(err)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="whepcast ingest"`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.Error(w, fmt.Sprint(err), code)
	return code
}
