package embedded

import "errors"

// errShutdownPending is joined to ctx's error when Shutdown gives up waiting.
var errShutdownPending = errors.New("server still shutting down")
