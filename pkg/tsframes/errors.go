package tsframes

import "errors"

// Non-fatal decode problems. Options.OnDecodeError receives errors wrapping
// one of these; errors.Is tells them apart.
var (
	// ErrSync: bytes were skipped to find the 0x47 sync byte again (counted
	// in Stats.Resyncs, not in Stats.DecodeErrors).
	ErrSync = errors.New("lost MPEG-TS sync")
	// ErrCorruptPacket: a packet was dropped (transport_error_indicator set,
	// not followed by a sync byte, or a truncated packet at the end of the
	// input), or the PES in progress of a packet found not followed by a
	// sync byte only after it was demuxed.
	ErrCorruptPacket = errors.New("corrupt MPEG-TS packet")
	// ErrContinuity: packets of an elementary stream were lost (continuity
	// counter gap); the PES they belonged to is dropped.
	ErrContinuity = errors.New("continuity counter gap")
	// ErrPSI: a PAT or PMT section was malformed (length, CRC, layout) and
	// ignored.
	ErrPSI = errors.New("invalid PAT/PMT section")
	// ErrPESTooLarge: a PES grew beyond MaxPESSize and was dropped.
	ErrPESTooLarge = errors.New("PES too large")
	// ErrDemux: a PES could not be parsed (no start code, no PTS, a header
	// or PES_packet_length beyond its bytes, an invalid Annex-B or Opus
	// access unit structure) or could not complete (cut off by a PMT
	// change), or mediacommon could not describe a PMT's tracks, or packets
	// kept while it read a first AAC/AC-3/E-AC-3 frame were dropped.
	ErrDemux = errors.New("demux error")
	// ErrNoKeyframe: a video access unit was dropped because its track has
	// not shown an IDR (with SPS and PPS) yet, e.g. after a mid-stream start.
	ErrNoKeyframe = errors.New("video access unit before the first keyframe")
	// ErrAccessUnit: a video access unit was dropped because it is unusable
	// (no NAL units, a truncated SPS, an IDR whose SPS/PPS were never seen).
	ErrAccessUnit = errors.New("invalid video access unit")
	// ErrOpus: an Opus packet was dropped (empty, or a TOC that gives no
	// duration).
	ErrOpus = errors.New("invalid Opus packet")
	// ErrHeldOverflow: a frame waiting for its track announcement was
	// dropped because MaxHeldFrames frames were already waiting.
	ErrHeldOverflow = errors.New("too many frames waiting for the announcement")
	// ErrSCTE35: an SCTE-35 splice_info_section was dropped (its table_id,
	// section_length or CRC is wrong, it is encrypted, or its command is
	// truncated).
	ErrSCTE35 = errors.New("invalid SCTE-35 section")
)

// errStop, errInput and errSink tell Run why a program span stopped
// (errStop and errInput also travel through mediacommon's reader while it
// describes the tracks); Run replaces them by the real cause. errRestart and
// errWaitPMT are the other reasons a program span ends.
var (
	errStop    = errors.New("tsframes: stopped")
	errInput   = errors.New("tsframes: input failed")
	errSink    = errors.New("tsframes: sink failed")
	errRestart = errors.New("tsframes: restart over the same PMT")
	errWaitPMT = errors.New("tsframes: wait for a new PMT")
)

// errRunTwice is returned by a second call of Run.
var errRunTwice = errors.New("tsframes: Run called more than once")
