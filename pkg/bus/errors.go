package bus

import "errors"

// Errors returned by the package.
var (
	// ErrInvalidName is returned for a stream name outside [A-Za-z0-9_-]{1,64}.
	ErrInvalidName = errors.New("invalid stream name")
	// ErrNotFound is returned when a stream, message or catalog entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrClosed is returned by a Publisher or Subscription used after Close/Stop.
	ErrClosed = errors.New("closed")
)
