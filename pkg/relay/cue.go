package relay

import (
	"sync"
	"sync/atomic"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// SCTE-35 cues: the hub keeps the stream's recent cues and hands each new one
// to its viewers; a viewer's writer passes a cue on to its handler when it
// writes the frame the cue applies to (the first with a PTS at or after the
// cue's), so that the event follows the video the viewer sees, whether it
// plays the live edge, a replayed GOP or the log.

const (
	// maxHubCues is how many recent cues a hub keeps for the viewers that
	// start (their cues may be ahead of the frames replayed to them).
	maxHubCues = 16
	// maxViewerCues bounds the cues waiting for a viewer's frames; the
	// oldest is dropped beyond.
	maxViewerCues = 32
)

// OnCue sets the function the viewer's writer calls with each SCTE-35 cue
// of the stream once it has written the frame of the cue's PTS (video,
// or audio for a viewer without video); nil stops the calls. A cue whose
// PTS is before the first frame the viewer got (after a join or a seek) is
// not passed on. fn runs on the writer goroutine: it must not block. It may
// be called at any time.
func (v *Viewer) OnCue(fn func(tsframes.Cue)) {
	if fn == nil {
		v.cues.handler.Store(nil)
		return
	}
	v.cues.handler.Store(&fn)
}

// cueQueue holds the cues waiting for a viewer's frames. The hub adds to it
// (add, reset) under hub.mu; the writer goroutine takes the due ones
// (wrote), lock-free while none wait.
type cueQueue struct {
	mu      sync.Mutex
	pending []tsframes.Cue
	// waiting is len(pending); fresh is set until the first frame written
	// since the last reset. Both let wrote return at once without a cue.
	waiting atomic.Int32
	fresh   atomic.Bool
	handler atomic.Pointer[func(tsframes.Cue)]
}

// add queues c.
func (q *cueQueue) add(c tsframes.Cue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxViewerCues {
		q.pending = append(q.pending[:0], q.pending[1:]...)
	}
	q.pending = append(q.pending, c)
	q.waiting.Store(int32(len(q.pending)))
}

// reset starts the queue over with recent (the viewer starts, or moved):
// the cues before its first frame will not be passed on.
func (q *cueQueue) reset(recent []tsframes.Cue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.pending)
	q.pending = append(q.pending[:0], recent...)
	q.waiting.Store(int32(len(q.pending)))
	q.fresh.Store(true)
}

// clear drops the waiting cues (a new epoch: a new timeline).
func (q *cueQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.pending)
	q.pending = q.pending[:0]
	q.waiting.Store(0)
}

// wrote is called by the writer after each frame that positions the viewer,
// with its PTS: the cues due are passed to the handler.
func (q *cueQueue) wrote(pts int64) {
	fresh := q.fresh.Load()
	if !fresh && q.waiting.Load() == 0 {
		return
	}
	var due []tsframes.Cue
	q.mu.Lock()
	fresh = q.fresh.Swap(false)
	kept := q.pending[:0]
	for _, c := range q.pending {
		switch {
		case c.PTS > pts:
			kept = append(kept, c)
		case fresh && c.PTS < pts:
			// Before the first frame the viewer sees.
		default:
			due = append(due, c)
		}
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	q.waiting.Store(int32(len(kept)))
	q.mu.Unlock()
	if h := q.handler.Load(); h != nil {
		for _, c := range due {
			(*h)(c)
		}
	}
}

// onCue keeps a cue of the stream and queues it for the active viewers.
// Called by the bus handler.
func (h *hub) onCue(c tsframes.Cue) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cues) >= maxHubCues {
		h.cues = append(h.cues[:0], h.cues[1:]...)
	}
	h.cues = append(h.cues, c)
	for _, v := range h.active {
		v.cues.add(c)
	}
}

// newCueEpoch forgets the cues of the previous epoch, whose timeline
// ended. Called by the bus handler.
func (h *hub) newCueEpoch() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.cues)
	h.cues = h.cues[:0]
	for _, v := range h.active {
		v.cues.clear()
	}
}
