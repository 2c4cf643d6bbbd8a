package transcode

import (
	"context"
	"slices"
	"sync"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// waitList holds the publications refused a transcode slot
// (MaxTranscodes were running), oldest first: when a slot frees, the
// oldest is told to try again, so that a refused stream gets its Opus
// without waiting for its next publication.
type waitList struct {
	mu   sync.Mutex
	list []*publisher
}

// add appends p unless it is there already (it keeps its place), and
// returns the length of the list.
func (w *waitList) add(p *publisher) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.list, p) {
		w.list = append(w.list, p)
	}
	return len(w.list)
}

// toFront moves p, when it is in the list, to its front.
func (w *waitList) toFront(p *publisher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.Index(w.list, p); i > 0 {
		copy(w.list[1:i+1], w.list[:i])
		w.list[0] = p
	}
}

// remove removes p and returns the length of the list.
func (w *waitList) remove(p *publisher) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.Index(w.list, p); i >= 0 {
		w.list = slices.Delete(w.list, i, i+1)
	}
	return len(w.list)
}

// pop removes and returns the oldest publication (nil when none), and the
// length of the list.
func (w *waitList) pop() (*publisher, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.list) == 0 {
		return nil, 0
	}
	p := w.list[0]
	w.list = slices.Delete(w.list, 0, 1)
	return p, len(w.list)
}

// wait records that p was refused a slot.
func (s *Stage) wait(p *publisher) {
	s.metrics.waiting.Set(float64(s.waiting.add(p)))
}

// unwait forgets p (it got a slot, needs none any more, or ended).
func (s *Stage) unwait(p *publisher) {
	s.metrics.waiting.Set(float64(s.waiting.remove(p)))
}

// slotFreed tells the oldest publication waiting for a slot to try again.
// It does not take a publication's lock: the publication tries at its next
// frame, on its own goroutine (see publisher.retryLocked).
func (s *Stage) slotFreed() {
	p, n := s.waiting.pop()
	s.metrics.waiting.Set(float64(n))
	if p != nil {
		p.slotFree.Store(true)
	}
}

// retryLocked announces the source's latest announcement again now that a
// slot may be free: the transcode starts and the derived track is
// announced (or the publication waits again when another stream took the
// slot first). Called with mu held.
func (p *publisher) retryLocked(ctx context.Context) {
	if err := p.announceLocked(ctx, p.last); err != nil {
		p.stage.cfg.Logger.Warn("announcing the derived audio after a transcode slot freed", "stream", p.stream, "epoch", p.epoch, "err", err)
		return
	}
	if p.job != nil {
		p.stage.cfg.Logger.Info("transcode slot freed: transcoding the audio now", "stream", p.stream, "epoch", p.epoch)
		return
	}
	// Another stream took the slot first (one restarting its transcode
	// for a new source format takes its own back): p stays the oldest.
	p.stage.waiting.toFront(p)
}

// markWaiting returns tracks with the track of pid marked as waiting for a
// transcode slot (the stream list says why its audio does not play yet).
func markWaiting(tracks []tsframes.Track, pid uint16) []tsframes.Track {
	tracks = slices.Clone(tracks)
	for i := range tracks {
		if tracks[i].PID == pid {
			tracks[i].TranscodeWaiting = true
		}
	}
	return tracks
}
