package tsframes

// Kind is the media kind of an elementary stream.
type Kind string

// Kinds.
const (
	KindVideo Kind = "video"
	KindAudio Kind = "audio"
	KindData  Kind = "data"
)

// Codec names an elementary stream's codec as announced.
type Codec string

// Codecs that can appear in an announcement. Only CodecH264, CodecH265 (to
// viewers that offer it) and CodecOpus are carried by WebRTC in whepcast; the
// others are announced with WebRTC false.
const (
	CodecH264        Codec = "H264"
	CodecH265        Codec = "H265"
	CodecOpus        Codec = "Opus"
	CodecAAC         Codec = "AAC"
	CodecAACLATM     Codec = "AAC LATM"
	CodecMPEGAudio   Codec = "MPEG-1/2 Audio"
	CodecMPEG4Video  Codec = "MPEG-4 Video"
	CodecMPEG12Video Codec = "MPEG-1/2 Video"
	CodecAC3         Codec = "AC-3"
	CodecEAC3        Codec = "E-AC-3"
	CodecKLV         Codec = "KLV"
	CodecDVBSubtitle Codec = "DVB Subtitle"
	CodecUnknown     Codec = "unknown"
)

// Track describes one elementary stream of the PMT.
type Track struct {
	PID   uint16 `json:"pid"`
	Kind  Kind   `json:"kind"`
	Codec Codec  `json:"codec"`
	// WebRTC is true when whepcast can send this codec over WebRTC
	// (H.264, Opus, and H.265 to viewers that offer it).
	WebRTC bool `json:"webrtc"`
	// Channels is the audio channel count, when known.
	Channels int `json:"channels,omitempty"`
	// SampleRate is the audio sample rate in Hz, when known.
	SampleRate int `json:"sample_rate,omitempty"`
	// ProfileLevelID is the H.264 profile-level-id (6 hex digits, as in
	// SDP fmtp), filled in once an SPS of the track has been seen.
	ProfileLevelID string `json:"profile_level_id,omitempty"`
	// ProfileID, TierFlag and LevelID are the H.265 general_profile_idc,
	// general_tier_flag and general_level_idc (as in SDP fmtp profile-id,
	// tier-flag and level-id, RFC 7798), filled in once an SPS of the track
	// has been seen.
	ProfileID int `json:"profile_id,omitempty"`
	TierFlag  int `json:"tier_flag,omitempty"`
	LevelID   int `json:"level_id,omitempty"`
	// DerivedFrom is the PID of the track this one is made from by a
	// transcoding stage (docs/transcoding.md); 0 for a track of the source.
	DerivedFrom uint16 `json:"derived_from,omitempty"`
	// BFrames is true for a video track whose frames are reordered
	// (B-frames), as the transcoding stage detects it (docs/transcoding.md).
	BFrames bool `json:"b_frames,omitempty"`
	// TranscodeWaiting is true for a source track the transcoding stage
	// would make playable but has no slot for (--max-transcodes running):
	// it is transcoded when one frees (docs/transcoding.md).
	TranscodeWaiting bool `json:"transcode_waiting,omitempty"`
}

// Announcement is the set of tracks of the current PMT.
type Announcement struct {
	Tracks []Track `json:"tracks"`
}

// Frame is one access unit of a WebRTC-capable track.
type Frame struct {
	PID   uint16
	Kind  Kind
	Codec Codec
	// PTS and DTS are on the 90 kHz clock, unwrapped: they never jump back
	// at the 33-bit MPEG-TS wrap. For audio DTS equals PTS.
	PTS int64
	DTS int64
	// Duration is the frame duration on the 90 kHz clock for audio
	// (from the Opus TOC); 0 for video.
	Duration int64
	// Key is true for a video access unit that starts with an IDR (H.264)
	// or an IRAP picture (H.265, NAL unit types 16 to 21); such an access
	// unit always carries SPS and PPS (and for H.265 VPS) before it.
	Key bool
	// Data is an Annex-B access unit (video) or one Opus packet (audio);
	// for source audio (Options.SourceAudio) the payload of one PES.
	// It is owned by the receiver.
	Data []byte
	// More is true on an audio packet when the next frame delivered is
	// another packet of the same PES, delivered at once (muxers put several
	// Opus packets in one PES): a receiver may carry them together without
	// adding latency. False on video and on the last packet of a PES.
	More bool
}
