package relay

import (
	"sync"
	"time"
)

// Smoothing bounds. A stream is smoothed while its frames' lateness (store
// time minus media time) spreads over more than smoothMinSpread: bursts, not
// the jitter of an even stream. A frame is never held more than
// smoothMaxDelay: the anchor stops that far above the least lateness (a
// frame later than that, a transcoder's first output or a stall, goes as it
// comes), and a stream whose frames would need more, being early, runs
// ahead of real time (a file pushed at full speed) and is passed as it
// comes. The largest
// lateness (the anchor) rises at once and steps down only after a
// smoothWindow in which it stayed smoothStep lower: sending faster or slower
// than real time, even by 1 %, makes a browser's audio and video drift
// apart, and a pause makes its audio jitter buffer grow for many seconds.
//
// Until smoothDecideFrames video frames have been seen, whether the video
// comes in bursts is not known yet: frames are held to the largest video
// lateness so far (the first frame of a burst is the latest). A stream that
// has video holds its audio until its first video frame (at most
// smoothMaxDelay): the audio of a starting MPEG-TS source comes first, less
// late than the video released after it, and sending it at once, then
// holding it when the video raised the anchor, left a gap that made the
// browser's audio jitter buffer grow for the rest of the session.
const (
	smoothMinSpread    = 150 * time.Millisecond
	smoothMaxDelay     = 800 * time.Millisecond
	smoothWindow       = 10 * time.Second
	smoothStep         = 50 * time.Millisecond
	smoothDecideFrames = 6
)

// smoother evens out the delivery of a live stream whose frames reach the
// node in bursts. Muxers put hundreds of milliseconds of audio in one PES
// (ffmpeg: about 350 ms of AAC, MP2 or AC-3), and a transcoding stage turns
// each into a burst of Opus packets; a browser whose jitter buffer sees
// bursts holds the audio that much longer than the video, and its lip sync
// takes many seconds to catch up (the hub smooths such streams only, see
// needsSmoothing). The smoother sends each frame at its
// media time plus the anchor, so that audio and video leave evenly and
// together, at the latency the bursts impose anyway. Lateness is taken from
// the time JetStream stored each frame, so the hub learns it from the GOP it
// starts with, before the first live frame; the transit from the store to
// the hub is the least seen in the window.
//
// push is called by the bus handler; queued frames are sent by run, each
// kind in its order. deliver is called with mu held, never concurrently.
type smoother struct {
	deliver func(*frame)

	mu     sync.Mutex
	queues [2][]smoothed // video, audio
	wake   chan struct{}

	// expectVideo: the stream has video (its audio waits for the first
	// video frame, in pending).
	expectVideo bool
	pending     []pendingFrame

	started bool
	anchor  time.Duration // the largest lateness
	floor   time.Duration // the least lateness of this window and the last
	transit time.Duration // the least transit of this window and the last
	// vlo and vhi are the extremes of the video's lateness in this window
	// and the last (vSeen: there was video).
	vlo, vhi time.Duration
	vSeen    bool
	vFrames  int        // video frames seen since the start, up to smoothDecideFrames
	win      lateWindow // this window
}

// pendingFrame is an audio frame waiting for the stream's first video frame.
type pendingFrame struct {
	f                   *frame
	recv, late, transit time.Duration
}

// lateWindow is what the frames stored within one smoothWindow showed.
type lateWindow struct {
	start      time.Duration // store time
	min, max   time.Duration // lateness
	transit    time.Duration // the least
	vmin, vmax time.Duration // the video's lateness (video: there was some)
	video      bool
}

type smoothed struct {
	f   *frame
	due time.Duration // on the hub's clock
}

func newSmoother(deliver func(*frame)) *smoother {
	return &smoother{deliver: deliver, wake: make(chan struct{}, 1)}
}

// setExpectVideo tells whether the stream has video.
func (s *smoother) setExpectVideo(video bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expectVideo = video
	if !video {
		s.schedulePendingLocked()
	}
}

// push takes f, with media time media (90 kHz, unwrapped), which JetStream
// stored at stored (wall clock, Unix ns; 0 when unknown) and which reached
// the hub at recv (hub clock; wall clock recvWall). It delivers f now or
// queues it.
func (s *smoother) push(f *frame, media, stored int64, recv time.Duration, recvWall int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored == 0 {
		stored = recvWall
	}
	st := time.Duration(stored)
	late := st - time.Duration(media)*time.Second/videoClockRate
	transit := time.Duration(recvWall - stored)
	s.observe(st, late, transit, f.video)
	if !f.video && s.expectVideo && !s.vSeen {
		s.pending = append(s.pending, pendingFrame{f: f, recv: recv, late: late, transit: transit})
		s.releaseLocked(recv)
		return
	}
	if f.video {
		s.schedulePendingLocked()
	}
	due := s.dueLocked(recv, late, transit)
	if due-recv > smoothMaxDelay {
		// Ahead of real time: deliver what waits and start again.
		s.flushLocked()
		s.started = false
		s.observe(st, late, transit, f.video)
		due = recv
	}
	s.enqueueLocked(f, due, recv)
}

// dueLocked returns when a frame of lateness late and transit, which reached
// the hub at recv, is due.
func (s *smoother) dueLocked(recv, late, transit time.Duration) time.Duration {
	anchor := s.anchor
	switch {
	case s.vSeen && s.vFrames < smoothDecideFrames:
		anchor = s.vhi // not decided yet: to the latest video
	case !s.bursty():
		return recv
	}
	return recv + (anchor - late) + (s.transit - transit)
}

// enqueueLocked delivers f now when it is due and nothing of its kind
// waits, or queues it.
func (s *smoother) enqueueLocked(f *frame, due, now time.Duration) {
	k := 0
	if !f.video {
		k = 1
	}
	if q := s.queues[k]; len(q) > 0 {
		due = max(due, q[len(q)-1].due) // each kind in its order
	}
	s.releaseLocked(now)
	if due <= now && len(s.queues[k]) == 0 {
		s.deliver(f)
		return
	}
	s.queues[k] = append(s.queues[k], smoothed{f: f, due: due})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// schedulePendingLocked gives the audio frames waiting for the first video
// frame their due times (those past are delivered now).
func (s *smoother) schedulePendingLocked() {
	if len(s.pending) == 0 {
		return
	}
	p := s.pending
	s.pending = nil
	now := p[len(p)-1].recv
	for i := range p {
		s.enqueueLocked(p[i].f, s.dueLocked(p[i].recv, p[i].late, p[i].transit), now)
		p[i] = pendingFrame{}
	}
}

// bursty reports whether the stream comes in bursts: its video's lateness
// spreads over more than smoothMinSpread (the ingest releases an MPEG-TS
// source's video with the audio PES that covers it); without video, all
// frames' lateness. Audio in bursts beside video that comes evenly (AAC over
// RTMP through a stage whose output is bursty) is not evened out: holding
// the video for it would only delay the picture.
func (s *smoother) bursty() bool {
	if s.vSeen {
		return s.vhi-s.vlo > smoothMinSpread
	}
	return s.anchor-s.floor > smoothMinSpread
}

// observe takes the lateness and transit of a frame stored at stored.
func (s *smoother) observe(stored, late, transit time.Duration, video bool) {
	if !s.started {
		s.started = true
		s.anchor, s.floor, s.transit = late, late, transit
		s.vlo, s.vhi, s.vSeen = late, late, video
		s.vFrames = 0
		if video {
			s.vFrames = 1
		}
		s.win = lateWindow{start: stored, min: late, max: late, transit: transit, vmin: late, vmax: late, video: video}
		return
	}
	if stored-s.win.start >= smoothWindow {
		if s.win.max < s.anchor-smoothStep {
			s.anchor = s.win.max
		}
		s.floor, s.transit = s.win.min, s.win.transit
		s.vlo, s.vhi, s.vSeen = s.win.vmin, s.win.vmax, s.win.video
		s.win = lateWindow{start: stored, min: late, max: late, transit: transit, vmin: late, vmax: late}
	}
	if video {
		s.vFrames = min(s.vFrames+1, smoothDecideFrames)
		if !s.win.video {
			s.win.vmin, s.win.vmax, s.win.video = late, late, true
		}
		s.win.vmin, s.win.vmax = min(s.win.vmin, late), max(s.win.vmax, late)
		if !s.vSeen {
			s.vlo, s.vhi, s.vSeen = late, late, true
		}
		s.vlo, s.vhi = min(s.vlo, late), max(s.vhi, late)
	}
	s.win.min, s.win.max = min(s.win.min, late), max(s.win.max, late)
	s.win.transit = min(s.win.transit, transit)
	if late-s.floor <= smoothMaxDelay {
		// A frame later than that (a transcoder's first output, a
		// stall) is not a burst to even out: it goes as it comes.
		s.anchor = max(s.anchor, late)
	}
	s.floor = min(s.floor, late)
	s.transit = min(s.transit, transit)
}

// releaseLocked delivers, in due order, the queued frames due by now.
func (s *smoother) releaseLocked(now time.Duration) {
	if len(s.pending) > 0 && now-s.pending[0].recv > smoothMaxDelay {
		s.schedulePendingLocked() // no video came
	}
	for {
		k := s.nextLocked()
		if k < 0 || s.queues[k][0].due > now {
			return
		}
		s.popLocked(k)
	}
}

// flush delivers every queued frame, in due order: before an announcement
// or an epoch change, which the frames queued precede.
func (s *smoother) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *smoother) flushLocked() {
	for i, p := range s.pending {
		s.deliver(p.f)
		s.pending[i] = pendingFrame{}
	}
	s.pending = nil
	for k := s.nextLocked(); k >= 0; k = s.nextLocked() {
		s.popLocked(k)
	}
}

// nextLocked returns the queue whose head is due first, -1 when both are
// empty.
func (s *smoother) nextLocked() int {
	v, a := s.queues[0], s.queues[1]
	switch {
	case len(v) == 0 && len(a) == 0:
		return -1
	case len(a) == 0 || (len(v) > 0 && v[0].due <= a[0].due):
		return 0
	default:
		return 1
	}
}

func (s *smoother) popLocked(k int) {
	q := s.queues[k]
	f := q[0].f
	q[0] = smoothed{}
	s.queues[k] = q[1:]
	s.deliver(f)
}

// run sends the queued frames when due, until done is closed; clock is the
// hub's clock.
func (s *smoother) run(done <-chan struct{}, clock time.Time) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		s.releaseLocked(time.Since(clock))
		wait := time.Duration(-1)
		if k := s.nextLocked(); k >= 0 {
			wait = s.queues[k][0].due - time.Since(clock)
		}
		if len(s.pending) > 0 {
			if w := s.pending[0].recv + smoothMaxDelay + time.Millisecond - time.Since(clock); wait < 0 || w < wait {
				wait = max(w, 0)
			}
		}
		s.mu.Unlock()
		var timer <-chan time.Time
		if wait >= 0 {
			t.Reset(wait)
			timer = t.C
		}
		select {
		case <-done:
			return
		case <-s.wake:
		case <-timer:
		}
		t.Stop()
	}
}
