// Package tsframes reads a live MPEG-TS byte stream and turns it into track
// announcements and frames (H.264 access units and Opus packets), the first
// step of whepcast's data path.
//
// # Input
//
// Demuxer reads 188-byte packets from an io.Reader, follows the first
// program of the PAT and its PMT, and hands the packets of that PMT's
// elementary streams to mediacommon's MPEG-TS reader, which assembles PES and
// splits them into NAL units and Opus packets. mediacommon reads the PMT only
// once, so the package watches PAT and PMT itself: when the PMT content (the
// streams' PIDs, types and descriptors; the version number is ignored, since
// ffmpeg always writes 0) changes, it lets the PES in progress complete and
// starts a new mediacommon reader over the new PAT and PMT.
//
// # Output and ordering
//
// Handler.Tracks receives an Announcement listing every stream of the PMT in
// PMT order, whatever its codec; only H.264 and Opus have WebRTC set and only
// they produce frames. It is called:
//   - once per PMT content (the first PMT, then each change), as soon as every
//     H.264 track has shown an SPS, so that ProfileLevelID is filled in; or
//     after AnnounceTimeout of media time without one (then without it), or
//     at the end of the input;
//   - again when an SPS brings a new profile-level-id for an announced track.
//
// No Frame precedes the announcement of its track: frames that arrive while
// the announcement waits for an SPS are held (at most MaxHeldFrames) and
// delivered right after it. Frames come in the order their PES complete in
// the stream: in decode order within a track, interleaved across tracks as
// the stream multiplexes them (not sorted by timestamp).
//
// Video: one Frame per access unit, Annex-B with 4-byte start codes, access
// unit delimiters removed. Key is true iff the access unit contains an IDR;
// such a frame always carries SPS and PPS before the IDR: when the encoder
// did not repeat them, the last ones seen on the track are inserted. Access
// units before a track's first IDR are dropped (they cannot be decoded), as
// is an IDR before any SPS/PPS was seen.
//
// Audio: one Frame per Opus packet. A PES usually carries several; packet i
// of a PES gets the PES PTS plus the durations of the packets before it.
// Duration is the packet's duration from its TOC, on the 90 kHz clock.
//
// # Timestamps
//
// PTS and DTS are on the 90 kHz clock, unwrapped into an int64: they never
// jump back at the 33-bit wrap (they go on past 2^33) and they continue
// across PMT changes. They start at the stream's own values (not at 0); all
// tracks share one timeline. For audio DTS equals PTS.
//
// # Ownership
//
// Frame.Data and Announcement.Tracks are newly allocated for the receiver,
// which may keep and modify them; the package never touches them again.
//
// # Bad input
//
// Corrupt input never stops Run and never makes it panic or spin: garbage
// between packets is skipped by resynchronising on the 0x47 sync byte (three
// sync bytes 188 bytes apart), counted in Stats.Resyncs; lost packets
// (continuity counter gaps, whose PES are dropped), packets with
// transport_error_indicator, malformed PAT/PMT sections, PES that mediacommon
// cannot parse, oversized PES (MaxPESSize), undecodable access units and
// invalid Opus packets are dropped and counted in Stats.DecodeErrors. Every
// such problem, resyncs included, is passed to Options.OnDecodeError as an
// error wrapping one of the Err values of this package. A packet that is not
// followed by a sync byte is dropped too (bytes may be missing inside it), so
// that damaged payload is not passed on; payload bytes changed in place
// cannot be detected at this level. A stream that starts mid-way (a file cut
// at any offset) yields its first frames after the next PAT, PMT and IDR. At
// the end of the input, a PES cut by a partial packet is dropped; the others
// are delivered.
//
// mediacommon's reader needs the first frame of AAC, AC-3 and E-AC-3 tracks
// to start; when that fails (ErrDemux), it starts again over the same PMT
// further on, and the frames in between are lost. A PMT it rejects outright
// (an Opus stream without its descriptor) yields nothing until the PMT
// changes.
package tsframes

// Limits.
const (
	// MaxPESSize is the largest PES passed to mediacommon; bigger ones are
	// dropped. It is below mediacommon's own limit (h264.MaxAccessUnitSize,
	// 8 MiB) because the astits demuxer under mediacommon's reader copies
	// the whole PES so far for every packet it adds: the cost grows with the
	// square of the PES size (about 0.4 s of CPU for 1 MiB, 1.5 s for 2 MiB,
	// over 20 s for 8 MiB). 2 MiB keeps 1080p keyframes and bounds what a
	// hostile stream can cost per PES.
	MaxPESSize = 2 << 20
	// MaxHeldFrames is how many frames are held while an announcement waits
	// for an SPS; older ones are dropped beyond it.
	MaxHeldFrames = 1024
	// AnnounceTimeout is how much media time (90 kHz) an announcement waits
	// for the SPS of every H.264 track.
	AnnounceTimeout = 2 * 90000
	// DrainLimit is how many packets of a new PMT are set aside while the
	// previous reader completes its PES in progress.
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
