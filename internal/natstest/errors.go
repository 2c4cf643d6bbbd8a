package natstest

import "errors"

// Errors returned by the package.
var (
	// ErrInvalidConfig is returned by Start for a Config it cannot use.
	ErrInvalidConfig = errors.New("natstest: invalid config")
	// ErrNotRunning is returned for an operation on a server that is not
	// running (Kill, Stop), or when a server exits while it is waited for.
	ErrNotRunning = errors.New("natstest: server not running")
	// ErrRunning is returned by Restart for a server that still runs.
	ErrRunning = errors.New("natstest: server already running")
	// ErrNoServer is returned for a server index out of range.
	ErrNoServer = errors.New("natstest: no such server")
)
