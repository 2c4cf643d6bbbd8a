// Package tsframes reads a live MPEG-TS byte stream and turns it into track
// announcements and frames (H.264 and H.265 access units and Opus packets), the first
// step of whepcast's data path. A Demuxer follows the first program of the
// PAT; each program span (the stream under one PMT content) is announced to
// the Sink before any of its frames, which come in stream order with
// unwrapped 90 kHz timestamps on one timeline, keyframes carrying their SPS
// and PPS (and VPS for H.265), and are owned by the receiver.
//
// Bad input never stops Run or makes it panic: what cannot be decoded is
// dropped, counted in Stats and reported through Options.OnDecodeError; memory
// stays within the limits below. docs/tsframes.md describes the demuxing,
// the ordering and the handling of bad input in full.
package tsframes

// Limits.
const (
	// MaxPESSize is the largest PES (header included) passed on; bigger
	// ones are dropped (ErrPESTooLarge) as soon as they grow past it, so
	// one stream's buffer never holds more. It is mediacommon's
	// h264.MaxAccessUnitSize: 8 MiB holds a 4K keyframe.
	MaxPESSize = 8 << 20
	// MaxHeldFrames is how many frames are held while an announcement waits
	// for an SPS; older ones are dropped beyond it.
	MaxHeldFrames = 1024
	// AnnounceTimeout is how much media time (90 kHz) an announcement waits
	// for the SPS of every H.264 and H.265 track.
	AnnounceTimeout = 2 * 90000
	// DrainLimit is how many packets of a new PMT are set aside while the
	// PES in progress of the previous one complete.
	DrainLimit = 4096
)

const (
	packetSize = 188
	syncByte   = 0x47
	// readBufferSize is the packet reader's buffer: many packets per read.
	readBufferSize = 64 * 1024
	// maxEmptyReads is how many (0, nil) reads in a row end the input with
	// io.ErrNoProgress.
	maxEmptyReads = 100
)
