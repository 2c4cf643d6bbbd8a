package whip

import (
	"time"
)

// Tracks of a publication, as the timeline and the records name them.
const (
	trackVideo = 0
	trackAudio = 1
)

// timeline maps the RTP timestamps of a publication's tracks onto one
// 90 kHz PTS timeline. Until the publisher's RTCP sender reports have
// arrived for every track, tracks are aligned by the arrival of their first
// packets; at the first report of the last track, the audio track is
// realigned once onto the video track by the reports' NTP times: video PTS
// never jump, audio PTS may, once (forward or back; the frame loop drops
// audio that would go back).
type timeline struct {
	start   time.Time // arrival of the first packet of any track
	started bool
	ref     int // the track the others are aligned on: video when present
	tracks  [2]trackClock
	aligned bool
	shift   time.Duration // of the audio track by the alignment
}

// trackClock is the clock of one track.
type trackClock struct {
	rate    int64 // RTP clock rate
	started bool
	last    uint32 // last RTP timestamp seen, for unwrapping
	ext     int64  // extended (unwrapped) last timestamp
	base    int64  // extended timestamp of the first packet
	offset  int64  // PTS of the first packet
	// The first sender report: NTP time (as a duration since the NTP epoch)
	// of the RTP timestamp srRTP (extended relative to base).
	srNTP time.Duration
	srRTP int64
	hasSR bool
}

// newTimeline returns a timeline whose video clock runs at videoRate Hz and
// audio clock at audioRate Hz (0 for an absent track).
func newTimeline(videoRate, audioRate int64) *timeline {
	tl := &timeline{ref: trackVideo}
	if videoRate == 0 {
		tl.ref = trackAudio
	}
	tl.tracks[trackVideo].rate = videoRate
	tl.tracks[trackAudio].rate = audioRate
	return tl
}

// unwrap extends ts from the track's last timestamp.
func (c *trackClock) unwrap(ts uint32) int64 {
	if !c.started {
		c.started, c.last, c.ext = true, ts, int64(ts)
		c.base = c.ext
		return c.ext
	}
	c.ext += int64(int32(ts - c.last))
	c.last = ts
	return c.ext
}

// observe takes the RTP timestamp ts of the next packet of track (in
// sequence order), arrived at now.
func (tl *timeline) observe(track int, ts uint32, now time.Time) {
	c := &tl.tracks[track]
	if !c.started {
		if !tl.started {
			tl.started, tl.start = true, now
		}
		c.offset = now.Sub(tl.start).Nanoseconds() * 9 / 100_000
	}
	c.unwrap(ts)
}

// pts returns the PTS of RTP timestamp ts of track, near the last one
// observed.
func (tl *timeline) pts(track int, ts uint32) int64 {
	c := &tl.tracks[track]
	ext := c.ext + int64(int32(ts-c.last))
	return c.offset + (ext-c.base)*90000/c.rate
}

// senderReport takes the publisher's report that ts of track is at ntp
// (an NTP timestamp: 32.32 fixed point seconds). It reports whether the
// tracks got aligned by it.
func (tl *timeline) senderReport(track int, ntp uint64, ts uint32) bool {
	c := &tl.tracks[track]
	if !c.started || c.hasSR {
		return false
	}
	c.hasSR = true
	c.srNTP = ntpDuration(ntp)
	c.srRTP = c.ext + int64(int32(ts-c.last)) - c.base
	return tl.align()
}

// align realigns the tracks onto the reference once every track has a
// report.
func (tl *timeline) align() bool {
	if tl.aligned {
		return false
	}
	for i := range tl.tracks {
		if c := &tl.tracks[i]; c.rate > 0 && !c.hasSR {
			return false
		}
	}
	tl.aligned = true
	ref := &tl.tracks[tl.ref]
	refStart := ref.firstNTP()
	for i := range tl.tracks {
		c := &tl.tracks[i]
		if i == tl.ref || c.rate == 0 {
			continue
		}
		offset := ref.offset + (c.firstNTP()-refStart).Nanoseconds()*9/100_000
		tl.shift = time.Duration((offset - c.offset) * 100_000 / 9)
		c.offset = offset
	}
	return true
}

// firstNTP is the NTP time of the track's first packet, by its report.
func (c *trackClock) firstNTP() time.Duration {
	return c.srNTP - time.Duration(c.srRTP*int64(time.Second)/c.rate)
}

// ntpDuration converts a 32.32 NTP timestamp into a duration since the NTP
// epoch.
func ntpDuration(ntp uint64) time.Duration {
	sec := int64(ntp >> 32)
	frac := int64(ntp & 0xFFFFFFFF)
	return time.Duration(sec)*time.Second + time.Duration(frac*int64(time.Second)>>32)
}
