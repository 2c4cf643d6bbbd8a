package relay

import "errors"

// Errors returned by the package. Viewer.Err returns one of the first four
// (possibly wrapped) once Viewer.Done is closed.
var (
	// ErrStreamEnded: the catalog said the stream ended and it did not come
	// back within Config.EndGrace.
	ErrStreamEnded = errors.New("stream ended")
	// ErrTracksChanged: the stream's set of WebRTC tracks (kinds, codecs,
	// H.264 profile-level-id) is no longer the one the viewer negotiated.
	ErrTracksChanged = errors.New("stream tracks changed")
	// ErrClosed: the viewer or the relay was closed.
	ErrClosed = errors.New("relay closed")
	// ErrSubscription: the stream's bus subscription failed; the error
	// wraps the bus error.
	ErrSubscription = errors.New("bus subscription failed")
	// ErrNoTracks is returned by Join when the announcement has no track the
	// viewer wants that WebRTC can carry (H.264 video, Opus audio).
	ErrNoTracks = errors.New("no WebRTC track to send")
	// ErrInvalidConfig is returned by New for a configuration it cannot use.
	ErrInvalidConfig = errors.New("invalid relay config")
	// ErrUnsupportedCodec is returned by a track's Bind when the peer did
	// not negotiate the track's codec.
	ErrUnsupportedCodec = errors.New("codec not negotiated")
)

// errBadAccessUnit is logged (and the frame skipped) for a video access unit
// that cannot be packetized.
var errBadAccessUnit = errors.New("bad H.264 access unit")
