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
	// ErrNoJWT is returned by Creds for a cluster not in JWT mode.
	ErrNoJWT = errors.New("natstest: cluster not in JWT mode")
	// ErrNoAccount is returned by Creds for an account it does not know.
	ErrNoAccount = errors.New("natstest: no such account")
	// ErrUserName is returned by Creds for a user name it cannot use.
	ErrUserName = errors.New("natstest: invalid user name")
)
