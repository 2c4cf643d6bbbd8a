package natsconn

import "errors"

// ErrInvalidConfig is wrapped by the errors of a Config that cannot work:
// a bad URL, conflicting authentication, an unreadable or invalid NKey,
// credentials or TLS file.
var ErrInvalidConfig = errors.New("natsconn: invalid configuration")
