package bus

import "errors"

// Errors returned by the package.
var (
	// ErrInvalidName is returned for a stream name outside [A-Za-z0-9_-]{1,64}.
	ErrInvalidName = errors.New("invalid stream name")
	// ErrNotFound is returned when a stream, message or catalog entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrClosed is returned by a Publisher, Subscription or Watcher used after Shutdown or Close.
	ErrClosed = errors.New("closed")
	// ErrDropped is returned by Publisher.Publish for a frame that was not
	// published: no room in the in-flight window within StallTimeout, a
	// NATS error, or a video delta waiting for the next keyframe after an
	// earlier drop. The publisher stays usable; the drop is counted.
	ErrDropped = errors.New("frame dropped")
	// ErrInsufficientStorage is returned by NewPublisher when JetStream
	// refuses to create a media stream for lack of storage (its store, or
	// the account's, is full or fully reserved).
	ErrInsufficientStorage = errors.New("insufficient JetStream storage")
)

var (
	// errSuperseded: the catalog entry belongs to a later epoch.
	errSuperseded = errors.New("catalog entry taken over by a later epoch")
	// errContention: concurrent catalog writers kept conflicting.
	errContention = errors.New("too many concurrent catalog updates")
	// errMissingHeader: a media message lacks a required header.
	errMissingHeader = errors.New("missing header")
)
