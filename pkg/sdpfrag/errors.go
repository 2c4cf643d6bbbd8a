package sdpfrag

import "errors"

// Errors returned by the package. Every error of Parse, ParseCandidate and
// Marshal wraps one of them.
var (
	// ErrSyntax is returned for a line or value that breaks the grammar.
	ErrSyntax = errors.New("sdpfrag: syntax error")
	// ErrLimit is returned when input exceeds one of the package limits.
	ErrLimit = errors.New("sdpfrag: limit exceeded")
)
