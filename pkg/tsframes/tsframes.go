// Package tsframes reads a live MPEG-TS byte stream and turns it into track
// announcements and frames (H.264 access units and Opus packets), the first
// step of whepcast's data path.
//
// # Input
//
// Demuxer reads 188-byte packets from an io.Reader and follows the first
// program of the PAT and its PMT. mediacommon's MPEG-TS reader describes the
// PMT's tracks (codec, and for AAC, AC-3 and E-AC-3 the sample rate and
// channels, which it reads from the first PES of the track); the package
// assembles the PES of the H.264 and Opus streams itself, from the packets
// it has already read, into one reusable buffer per stream (which keeps the
// capacity of the stream's largest PES, at most MaxPESSize): the cost is
// linear in the input, one copy of each payload byte, whatever the PES
// size. It splits them with mediacommon's parsers: H.264
// Annex-B access units into NAL units, Opus PES into Opus packets.
//
// A PES ends when its PES_packet_length is reached or, when that length is 0
// (as ffmpeg writes for video), when the next PES of the stream starts: a
// video access unit comes out when the first packet of the next one arrives.
// Once in sync, a packet is demuxed as soon as its 188 bytes are read, without
// waiting for the sync byte of the packet after it, so on a live input a PES
// with a PES_packet_length comes out as soon as its last packet is read.
//
// While mediacommon reads the first frame of an AAC, AC-3 or E-AC-3 track,
// the packets of the other streams are kept (at most 4*DrainLimit packets)
// and demuxed afterwards, so no frame is lost. Beyond that limit the kept
// packets are dropped (ErrDemux), so memory stays bounded even when such a
// track never shows a frame; nothing comes out until it does.
//
// The package watches PAT and PMT itself: when the PMT content (the streams'
// PIDs, types and descriptors; the version number is ignored, since ffmpeg
// always writes 0) changes, it lets the PES in progress complete (at their
// next start, or their PES_packet_length) while it sets the packets of the
// new PMT aside (at most DrainLimit), then describes and announces the new
// tracks and goes on with those packets. A PES still unfinished after
// DrainLimit set-aside packets is dropped (ErrDemux). The last PES of a
// stream the new PMT drops is waited for too when it has a
// PES_packet_length; without one (video) it has no end to wait for and is
// delivered as it stands when the drain ends, as at the end of the input.
// A PMT content that is replaced again before the drain ends is counted in
// Stats.PMTChanges but not announced: the drain goes on to the latest one.
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
// (continuity counter gaps, whose PES are dropped; a repeated packet, same
// counter, is ignored), packets with transport_error_indicator, malformed
// PAT/PMT sections, PES that cannot be parsed (no start code, no PTS, a
// header longer than the PES, fewer bytes than PES_packet_length before the
// next PES starts, an invalid Annex-B or Opus access unit structure),
// oversized PES (MaxPESSize), undecodable access units and invalid Opus
// packets are dropped and counted in Stats.DecodeErrors. Every such problem,
// resyncs included, is passed to Options.OnDecodeError as an error wrapping
// one of the Err values of this package. A packet that is not followed by a
// sync byte is suspect (bytes may be missing inside it): while sync is being
// acquired, or when that byte is read together with the packet, the packet
// is dropped; when the byte comes only after the packet was demuxed, the PES
// in progress of its PID is dropped. Either way (ErrCorruptPacket) damaged
// payload is not passed on, except in a PES that the suspect packet
// completed (its PES_packet_length reached), which came out before the
// damage could be seen. Payload bytes changed in place cannot be detected at
// this level. A stream that starts mid-way (a file cut at any
// offset) yields its first frames after the next PAT, PMT and IDR. At the
// end of the input, a PES cut by a partial packet is dropped (the partial
// packet counts as ErrCorruptPacket), as is one short of its
// PES_packet_length (ErrDemux); the others are delivered.
//
// mediacommon's reader needs the first frame of AAC, AC-3 and E-AC-3 tracks
// to describe them; when that fails (ErrDemux), it starts again over the
// same PMT further on, and the frames in between are lost. A PMT it rejects
// outright (an Opus stream without its descriptor) yields nothing until the
// PMT changes.
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
	// for the SPS of every H.264 track.
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
