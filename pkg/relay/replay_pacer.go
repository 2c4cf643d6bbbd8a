package relay

import "time"

// replayPacer schedules the video backlog of a viewer that starts with the
// replay of a GOP: the keyframe at once, then every frame when the media time
// since the keyframe, divided by rate, has passed. The backlog is the
// replayed GOP followed by the live video frames that arrive meanwhile; the
// viewer has caught up with the live feed when the backlog is empty, which
// happens after about the replay's duration / (rate - 1).
//
// Pacing by media time sends rate times the stream's bitrate on average,
// without having to measure it.
type replayPacer struct {
	rate  float64
	start time.Time
	ts0   uint32 // stream timestamp of the keyframe (90 kHz)
}

// newReplayPacer paces frames from the keyframe key, sent at start.
func newReplayPacer(key *frame, rate float64, start time.Time) replayPacer {
	return replayPacer{rate: rate, start: start, ts0: key.ts}
}

// at is when f is due.
func (p replayPacer) at(f *frame) time.Time {
	ticks := int64(int32(f.ts - p.ts0))
	if ticks <= 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(ticks) * float64(time.Second) / (videoClockRate * p.rate)))
}
