package relay

// Defaults of the timeline when a stream has not told its frame rate yet.
const (
	defaultVideoInterval = videoClockRate / 30 // one frame at 30 fps
	defaultAudioDuration = videoClockRate / 50 // one 20 ms Opus packet
	maxVideoInterval     = videoClockRate      // a larger PTS step is a gap, not a frame rate
)

// timeline maps the PTS of every epoch of a stream (90 kHz, unwrapped) to
// the stream's RTP clocks, which stay continuous across epochs:
//
//	stream time  = PTS + offset (90 kHz); offset changes only at an epoch
//	video RTP ts = uint32(stream time)
//	audio RTP ts = uint32(floor((stream time - audio origin) * 48000 / 90000))
//
// The audio origin is the stream time of the first audio packet, so that the
// 48 kHz timestamps step by exactly the packet durations (20 ms = 1800 ticks
// = 960 samples). The truncation of the 64-bit values to 32 bits is
// continuous, including across the 33-bit MPEG-TS wrap (the PTS is already
// unwrapped).
//
// At a new epoch the PTS restart from an arbitrary value. The timeline then
// waits for the epoch's first video keyframe (or, without video, its first
// audio packet) and picks the offset that puts it one frame interval after
// the last video frame (or right after the last audio packet). Frames before
// it are dropped, and so are audio packets that would overlap the ones
// already sent.
//
// A timeline is owned by one goroutine (the hub's bus handler).
type timeline struct {
	offset int64
	// rebase is set by newEpoch until the first frame of the new epoch.
	rebase   bool
	hasVideo bool // the stream carries video: rebase on its keyframe

	videoSeen bool
	lastVideo int64 // stream time of the last video frame
	interval  int64 // last video frame interval

	audioSeen   bool
	audioOrigin int64 // stream time of the first audio packet
	audioEnd90  int64 // stream time at the end of the last audio packet
	audioEnd48  int64 // 48 kHz timestamp (before truncation) at its end
	audioCheck  bool  // first audio packet after a rebase: drop overlaps
}

// newEpoch starts a new epoch; hasVideo tells whether the stream carries
// video, whose first keyframe then sets the new offset.
func (t *timeline) newEpoch(hasVideo bool) {
	t.hasVideo = hasVideo
	if t.videoSeen || t.audioSeen {
		t.rebase = true
	}
}

// video returns the RTP timestamp of a video frame, or false when the frame
// must be dropped (a new epoch waits for its first keyframe).
func (t *timeline) video(pts int64, key bool) (uint32, bool) {
	if t.rebase {
		if !key {
			return 0, false
		}
		switch {
		case t.videoSeen:
			t.offset = t.lastVideo + t.intervalOrDefault() - pts
		case t.audioSeen:
			t.offset = t.audioEnd90 - pts
		}
		t.rebase = false
		t.audioCheck = true
		// The first interval of the new epoch is the one we made up.
		t.lastVideo = pts + t.offset - t.intervalOrDefault()
	}
	st := pts + t.offset
	if t.videoSeen {
		if d := st - t.lastVideo; d > 0 && d <= maxVideoInterval {
			t.interval = d
		}
	}
	t.videoSeen = true
	t.lastVideo = st
	return uint32(st), true
}

func (t *timeline) intervalOrDefault() int64 {
	if t.interval > 0 {
		return t.interval
	}
	return defaultVideoInterval
}

// audio returns the RTP timestamp (48 kHz) of an audio packet of duration
// dur (90 kHz, 0 = 20 ms), or false when it must be dropped.
func (t *timeline) audio(pts, dur int64) (uint32, bool) {
	if dur <= 0 {
		dur = defaultAudioDuration
	}
	if t.rebase {
		if t.hasVideo {
			return 0, false
		}
		if t.audioSeen {
			t.offset = t.audioEnd90 - pts
		}
		t.rebase = false
		t.audioCheck = true
	}
	st := pts + t.offset
	if !t.audioSeen {
		t.audioOrigin = st
	}
	ts := floorDiv((st-t.audioOrigin)*audioClockRate, videoClockRate)
	if t.audioCheck && t.audioSeen && ts < t.audioEnd48 {
		return 0, false
	}
	t.audioCheck = false
	t.audioSeen = true
	t.audioEnd90 = st + dur
	t.audioEnd48 = floorDiv((st+dur-t.audioOrigin)*audioClockRate, videoClockRate)
	return uint32(ts), true
}

// floorDiv is a / b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
