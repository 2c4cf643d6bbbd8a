package lifecycle

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors wrapped by a LimitError.
var (
	// ErrMaxStreams: as many streams are live as --max-streams allows.
	ErrMaxStreams = errors.New("too many live streams")
	// ErrStorageBudget: the JetStream storage in use has reached
	// --storage-budget.
	ErrStorageBudget = errors.New("storage budget used up")
)

// LimitError is the refusal of a new stream by a limit. It wraps
// ErrMaxStreams or ErrStorageBudget.
type LimitError struct {
	// Limit is the flag of the limit: "max-streams" or "storage-budget".
	Limit string
	// Detail says how far the limit is reached ("8 of 8 live").
	Detail string
	// Wait is when a new attempt may succeed.
	Wait time.Duration
	err  error
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v (--%s: %s); retry after %v", e.err, e.Limit, e.Detail, e.Wait)
}

func (e *LimitError) Unwrap() error { return e.err }

// StatusCode is the HTTP status of the refusal: 503 for max-streams, 507
// (Insufficient Storage) for storage-budget.
func (e *LimitError) StatusCode() int {
	if errors.Is(e.err, ErrStorageBudget) {
		return http.StatusInsufficientStorage
	}
	return http.StatusServiceUnavailable
}

// RetryAfter is Wait: the HTTP Retry-After of the refusal.
func (e *LimitError) RetryAfter() time.Duration { return e.Wait }
