package config

import "errors"

// Errors returned by the package.
var (
	// ErrHelp is matched (errors.Is) by the *HelpError that LoadBroker and
	// LoadNode return when --help or -h was given.
	ErrHelp = errors.New("help requested")
	// ErrInvalid is wrapped by every error of Validate, and by the load
	// errors caused by a bad flag, file, environment value or key.
	ErrInvalid = errors.New("invalid configuration")
)

// HelpError is returned when --help was given. Usage is the text to print;
// the program should then exit with status 0.
type HelpError struct {
	Usage string
}

func (e *HelpError) Error() string { return ErrHelp.Error() }

// Is makes errors.Is(err, ErrHelp) true.
func (e *HelpError) Is(target error) bool { return target == ErrHelp }
