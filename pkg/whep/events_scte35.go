package whep

import (
	"encoding/json"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The scte35 event of the core extensions: each SCTE-35 cue of the stream,
// sent when the session's viewer has been sent the frame the cue applies to.

const (
	eventSCTE35 = "scte35"
	// maxQueuedCues bounds the scte35 events an event stream holds between
	// two reads; the oldest is dropped beyond.
	maxQueuedCues = 16
)

// cueViewer is a Viewer that passes on the stream's SCTE-35 cues as it
// plays them (a *relay.Viewer).
type cueViewer interface {
	OnCue(fn func(tsframes.Cue))
}

// scte35Event is the event of a cue: its time on the stream's timeline
// (90 kHz and seconds), what the section says, and the section itself
// (base64) for players that read more of it.
func scte35Event(c tsframes.Cue) sseEvent {
	b, _ := json.Marshal(struct {
		PTS          int64   `json:"pts"`
		PTSTime      float64 `json:"pts_time"`
		Command      string  `json:"command"`
		EventID      uint32  `json:"event_id"`
		OutOfNetwork bool    `json:"out_of_network"`
		Cancel       bool    `json:"cancel,omitempty"`
		Duration     float64 `json:"duration"`
		SpliceInfo   []byte  `json:"splice_info"`
	}{
		PTS:          c.PTS,
		PTSTime:      float64(c.PTS) / 90000,
		Command:      c.Command.String(),
		EventID:      c.EventID,
		OutOfNetwork: c.OutOfNetwork,
		Cancel:       c.Cancel,
		Duration:     float64(c.Duration) / 90000,
		SpliceInfo:   c.Section,
	})
	return sseEvent{Name: eventSCTE35, Data: string(b)}
}

// watchCues makes the cues of ss's viewer go to the event streams of ss
// that want scte35. Called once per session, when its first event stream
// is made.
func (en *eventNotifier) watchCues(ss *session) {
	cv, ok := ss.viewer.(cueViewer)
	if !ok {
		return
	}
	cv.OnCue(func(c tsframes.Cue) {
		e := scte35Event(c)
		var after []func()
		en.mu.Lock()
		if se := en.bySession[ss.id]; se != nil && se.ss == ss {
			after = se.pushAll(e, after)
		}
		en.mu.Unlock()
		runAll(after)
	})
}

// pushCue queues a scte35 event on es: every cue is kept (none replaces
// another), up to maxQueuedCues.
func (es *eventStream) pushCue(e sseEvent) {
	n := 0
	for _, old := range es.queue {
		if old.Name == eventSCTE35 {
			n++
		}
	}
	if n >= maxQueuedCues {
		for i, old := range es.queue {
			if old.Name == eventSCTE35 {
				es.queue = append(es.queue[:i], es.queue[i+1:]...)
				break
			}
		}
	}
	es.queue = append(es.queue, e)
}
