package whep

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"testing"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// cueFakeViewer is a fakeViewer that passes on cues (as a relay.Viewer).
type cueFakeViewer struct {
	*fakeViewer
	fn func(tsframes.Cue)
}

func (v *cueFakeViewer) OnCue(fn func(tsframes.Cue)) { v.fn = fn }

// oneSession is the eventSessions of a single session.
type oneSession struct{ ss *session }

func (o oneSession) get(stream, id string) *session {
	if stream == o.ss.stream && id == o.ss.id {
		return o.ss
	}
	return nil
}

func (o oneSession) streamCounts() (map[string]int, map[string]bool) {
	return map[string]int{o.ss.stream: 1}, map[string]bool{o.ss.id: true}
}

func (o oneSession) isDraining() bool { return false }

// TestSCTE35Event: each cue the viewer passes on becomes one scte35 event
// (none replaces another, at most maxQueuedCues wait) on the event streams
// that asked for scte35 (or for every event), its data the section in
// base64 as the draft specifies; the others do not get it.
func TestSCTE35Event(t *testing.T) {
	v := &cueFakeViewer{fakeViewer: &fakeViewer{done: make(chan struct{})}}
	ss := &session{id: "s1", stream: "cam", viewer: v, logger: slog.New(slog.DiscardHandler), done: make(chan struct{})}
	en := newEventNotifier(eventNotifierConfig{sessions: oneSession{ss}, catalog: newFakeCatalog(), logger: slog.New(slog.DiscardHandler)})
	defer en.shutdown()
	stream := func(want eventMask) (*eventStream, uint64) {
		id, err := en.create(ss, want)
		if err != nil {
			t.Fatal(err)
		}
		es := en.find(ss.id, id)
		return es, en.attach(es)
	}
	cues, cuesReader := stream(maskOf([]string{"scte35"}))
	all, allReader := stream(maskOf(nil))
	other, otherReader := stream(maskOf([]string{"viewercount", "position"}))
	if v.fn == nil {
		t.Fatal("the viewer's cues are not watched")
	}

	sec := tstest.SpliceInsert(42, 900000, 0, 30*90000)
	si, err := tsframes.ParseSpliceInfo(sec)
	if err != nil {
		t.Fatal(err)
	}
	v.fn(tsframes.Cue{PTS: 900000, SpliceInfo: si, Section: sec})
	v.fn(tsframes.Cue{PTS: 990000, SpliceInfo: tsframes.SpliceInfo{Command: tsframes.TimeSignal, Timed: true, SpliceTime: 990000},
		Section: tstest.TimeSignal(990000)})
	// The draft's data: the section in base64.
	want := []string{base64.StdEncoding.EncodeToString(sec), base64.StdEncoding.EncodeToString(tstest.TimeSignal(990000))}
	scte := func(evs []sseEvent) []string {
		var out []string
		for _, e := range evs {
			if e.Name == eventSCTE35 {
				out = append(out, e.Data)
			}
		}
		return out
	}
	for name, es := range map[string]struct {
		es     *eventStream
		reader uint64
	}{"scte35": {cues, cuesReader}, "every event": {all, allReader}} {
		evs, _ := en.take(es.es, es.reader)
		if got := scte(evs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s stream: scte35 events\n%v\nwant\n%v", name, got, want)
		}
	}
	if evs, _ := en.take(other, otherReader); len(scte(evs)) != 0 {
		t.Errorf("a stream that did not ask got %v", scte(evs))
	}

	// Between two reads at most maxQueuedCues wait: the latest.
	for i := range maxQueuedCues + 4 {
		v.fn(tsframes.Cue{PTS: int64(i), SpliceInfo: si, Section: tstest.TimeSignal(int64(i))})
	}
	evs, _ := en.take(cues, cuesReader)
	got := scte(evs)
	if len(got) != maxQueuedCues || got[0] != base64.StdEncoding.EncodeToString(tstest.TimeSignal(4)) {
		t.Fatalf("%d queued, the first %s; want %d from the fifth", len(got), got[0], maxQueuedCues)
	}
}
