package whepbench

import "errors"

// Errors of the package; returned errors wrap them with details.
var (
	// ErrConfig is an invalid configuration.
	ErrConfig = errors.New("whepbench: invalid configuration")
	// ErrWHEP is a WHEP server's unexpected answer (status, headers, SDP).
	ErrWHEP = errors.New("whepbench: unexpected WHEP response")
	// ErrIngest is an ingest server's unexpected answer, or a push that
	// could not be written.
	ErrIngest = errors.New("whepbench: ingest failed")
	// ErrTS is an MPEG-TS file the scheduler cannot pace.
	ErrTS = errors.New("whepbench: unusable MPEG-TS file")
	// ErrProc is a /proc file that cannot be read or parsed.
	ErrProc = errors.New("whepbench: cannot read /proc")
	// ErrNotConnected is a viewer that did not connect.
	ErrNotConnected = errors.New("whepbench: viewer did not connect")
)
