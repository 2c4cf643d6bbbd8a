package whep

import (
	"encoding/base64"

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

// scte35Event is the event of a cue as the core extensions' draft
// (draft-ietf-wish-whep-01/02, "SCTE-35 event") specifies it: its data is
// the base64 of the splice_info_section, which players parse themselves
// (the splice time is pts_time plus pts_adjustment, on the stream's
// timeline, as the position event's pts_time).
func scte35Event(c tsframes.Cue) sseEvent {
	return sseEvent{Name: eventSCTE35, Data: base64.StdEncoding.EncodeToString(c.Section)}
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
