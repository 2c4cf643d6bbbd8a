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
// without having to measure it. The keyframe, though, is several frames'
// worth of bytes: the frames after it wait gap more (see keyGapTicks), so
// that a link that carries rate times the bitrate has sent the keyframe
// before the rest follows.
type replayPacer struct {
	rate   float64
	start  time.Time
	ts0    uint32 // stream timestamp of the keyframe (90 kHz)
	keySeq uint64 // stream sequence number of the keyframe's first packet
	gap    time.Duration
}

// maxKeyGap bounds the pause after the keyframe.
const maxKeyGap = 250 * time.Millisecond

// keyGapTicks is the pause after a keyframe of keyBytes, in 90 kHz ticks:
// its transmission time at rate times the stream's bitrate of bytesPerTick
// bytes per tick, at most maxKeyGap; 0 when the bitrate is not known.
func keyGapTicks(keyBytes int, bytesPerTick, rate float64) uint32 {
	if bytesPerTick <= 0 {
		return 0
	}
	return uint32(min(float64(keyBytes)/(bytesPerTick*rate), maxKeyGap.Seconds()*videoClockRate))
}

// newReplayPacer paces frames from the keyframe key, sent at start, with a
// pause of gapTicks after it.
func newReplayPacer(key *frame, rate float64, gapTicks uint32, start time.Time) replayPacer {
	return replayPacer{
		rate:   rate,
		start:  start,
		ts0:    key.ts,
		keySeq: key.pkts[0].seq,
		gap:    time.Duration(gapTicks) * time.Second / videoClockRate,
	}
}

// at is when f is due.
func (p replayPacer) at(f *frame) time.Time {
	if f.pkts[0].seq == p.keySeq {
		return p.start
	}
	ticks := max(int64(int32(f.ts-p.ts0)), 0)
	return p.start.Add(p.gap + time.Duration(float64(ticks)*float64(time.Second)/(videoClockRate*p.rate)))
}
