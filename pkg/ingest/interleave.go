package ingest

import (
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Interleaving bounds: a video frame is never held longer than maxHold, nor
// while it is more than maxHoldPTS ahead of the audio, and at most
// maxHeldFrames are held.
const (
	maxHold       = time.Second
	maxHoldPTS    = 90000 // 1 s on the 90 kHz clock
	maxHeldFrames = 128
)

// interleaver puts the video of an MPEG-TS source back beside its audio.
// Muxers put much audio in one PES (ffmpeg: about 350 ms of AAC, MP2 or
// AC-3), and a PES leaves only when full, so the audio of an instant
// arrives up to half a second after its video. A browser that gets them
// so plays the audio late and its lip sync catches up only slowly (several
// ms a second). The interleaver holds each video frame until the audio
// covering its PTS has arrived (the latest audio frame's PTS plus its
// duration, or the gap between the last two when the duration is unknown),
// within the bounds above. Only audio that a transcoding stage makes Opus
// of (AAC, MPEG audio, AC-3: not WebRTC's) holds the video: Opus PES are
// short (at most 120 ms), the viewer gets them as they come, and holding
// the video for them added up to 100 ms to its latency (whep-bench
// latency, 200 viewers: p99 40 ms from the next PES, against 2.2 ms without). A stream
// without such audio, or whose audio stopped for maxHold, is not held.
//
// It is not safe for concurrent use: one publication's demux loop owns it.
type interleaver struct {
	waitAudio bool // the stream has audio the video waits for
	held      []heldFrame
	audioEnd  int64     // PTS up to which audio has arrived; valid when audioSeen
	audioSeen bool      // an audio frame arrived since the announcement
	lastAudio int64     // the latest audio frame's PTS
	audioAt   time.Time // when the latest audio frame arrived, or the announcement
}

type heldFrame struct {
	f  tsframes.Frame
	at time.Time
}

// announce takes the tracks of a new announcement: the frames held are
// returned first, to publish before it.
func (il *interleaver) announce(a tsframes.Announcement, now time.Time, out []tsframes.Frame) []tsframes.Frame {
	out = il.flush(out)
	il.waitAudio = false
	for _, t := range a.Tracks {
		if t.Kind == tsframes.KindAudio && !t.WebRTC {
			il.waitAudio = true
		}
	}
	il.audioSeen = false
	il.audioAt = now
	return out
}

// frame takes f, which arrived at now, and appends to out the frames to
// publish now, in order.
func (il *interleaver) frame(f tsframes.Frame, now time.Time, out []tsframes.Frame) []tsframes.Frame {
	switch f.Kind {
	case tsframes.KindAudio:
		end := f.PTS + f.Duration
		if f.Duration <= 0 && il.audioSeen && f.PTS > il.lastAudio && f.PTS-il.lastAudio < maxHoldPTS {
			end = f.PTS + (f.PTS - il.lastAudio)
		}
		if !il.audioSeen || end > il.audioEnd || il.audioEnd-end > maxHoldPTS {
			il.audioEnd = end
		}
		il.audioSeen, il.lastAudio, il.audioAt = true, f.PTS, now
		out = append(out, f)
	case tsframes.KindVideo:
		if !il.holding(now) {
			out = il.flush(out)
			return append(out, f)
		}
		il.held = append(il.held, heldFrame{f: f, at: now})
	default:
		out = append(out, f)
	}
	return il.release(now, out)
}

// holding reports whether video waits for audio: the stream has audio and
// it has not stopped.
func (il *interleaver) holding(now time.Time) bool {
	return il.waitAudio && now.Sub(il.audioAt) < maxHold
}

// release appends the held frames that may go: up to the last one covered
// by the audio or past a bound (those before it go with it, in order).
func (il *interleaver) release(now time.Time, out []tsframes.Frame) []tsframes.Frame {
	if !il.holding(now) {
		return il.flush(out)
	}
	cut := len(il.held) - maxHeldFrames
	for i, h := range il.held {
		covered := il.audioSeen && h.f.PTS < il.audioEnd
		late := now.Sub(h.at) >= maxHold || (il.audioSeen && h.f.PTS-il.audioEnd > maxHoldPTS)
		if covered || late {
			cut = max(cut, i+1)
		}
	}
	for _, h := range il.held[:max(cut, 0)] {
		out = append(out, h.f)
	}
	il.drop(max(cut, 0))
	return out
}

// flush appends every held frame.
func (il *interleaver) flush(out []tsframes.Frame) []tsframes.Frame {
	for _, h := range il.held {
		out = append(out, h.f)
	}
	il.drop(len(il.held))
	return out
}

// drop forgets the first n held frames.
func (il *interleaver) drop(n int) {
	if n == 0 {
		return
	}
	k := copy(il.held, il.held[n:])
	clear(il.held[k:])
	il.held = il.held[:k]
}

// untilLate returns how long until the oldest frame held reaches maxHold;
// false when none is held.
func (il *interleaver) untilLate(now time.Time) (time.Duration, bool) {
	if len(il.held) == 0 {
		return 0, false
	}
	return max(il.held[0].at.Add(maxHold).Sub(now), 0), true
}

// armLocked makes the timer publish the held frames that the source's
// next frame would otherwise have to release: a source that pauses must
// not keep its last video, nor a stream's first keyframe, waiting. h.mu is
// held.
func (h *frameForwarder) armLocked() {
	d, ok := h.il.untilLate(time.Now())
	if !ok || h.ilDone {
		return
	}
	if h.ilTimer == nil {
		h.ilTimer = time.AfterFunc(d, h.onLate)
		return
	}
	h.ilTimer.Reset(d)
}

// onLate publishes the frames held past maxHold.
func (h *frameForwarder) onLate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ilDone || h.pub == nil {
		return
	}
	_ = h.publishAll(h.il.release(time.Now(), h.out[:0]))
	h.armLocked()
}

// flush stops the timer and publishes the frames the interleaver still
// holds (the source ended), unless the publication was stopped.
func (h *frameForwarder) flush() {
	if h.il == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ilDone = true
	if h.ilTimer != nil {
		h.ilTimer.Stop()
	}
	if h.ctx.Err() != nil || h.fatal != nil {
		return
	}
	_ = h.publishAll(h.il.flush(h.out[:0]))
}
