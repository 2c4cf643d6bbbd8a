package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func cueAt(t testing.TB, pts int64, id uint32) tsframes.Cue {
	t.Helper()
	sec := tstest.SpliceInsert(id, pts, 0, 0)
	si, err := tsframes.ParseSpliceInfo(sec)
	if err != nil {
		t.Fatal(err)
	}
	return tsframes.Cue{PTS: pts, SpliceInfo: si, Section: sec}
}

// TestCueQueue: a cue is due at the first frame at or after its PTS; one
// before the first frame a (re)started viewer writes is not passed on, one
// that comes late is passed on at the next frame.
func TestCueQueue(t *testing.T) {
	var q cueQueue
	var got []int64
	q.handler.Store(new(func(c tsframes.Cue) { got = append(got, c.PTS) }))
	q.reset([]tsframes.Cue{{PTS: 100}, {PTS: 200}, {PTS: 300}})
	q.wrote(200) // first frame: 100 is before it, 200 is its own
	q.wrote(250)
	q.add(tsframes.Cue{PTS: 240}) // late: at the next frame
	q.wrote(290)
	q.wrote(310)
	q.wrote(400)
	if want := []int64{200, 240, 300}; !slicesEqual(got, want) {
		t.Fatalf("cues passed on at %v, want %v", got, want)
	}
	got = nil
	q.add(tsframes.Cue{PTS: 500})
	q.clear()
	q.wrote(600)
	if len(got) != 0 {
		t.Fatalf("cleared cue passed on: %v", got)
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cueFeed publishes events in real time (speed times): cues[i] goes out
// right before video frame i. stored[i] is closed once video frame i is
// published, with the time in storedAt[i].
type cueFeed struct {
	events []event
	speed  float64
	cues   map[int]tsframes.Cue
}

func (f cueFeed) run(ctx context.Context, p *bus.Publisher, mark int, marked chan<- time.Time) error {
	var t0 time.Time
	var first int64
	video := 0
	for _, e := range f.events {
		if e.ann != nil {
			if err := p.Announce(ctx, *e.ann); err != nil {
				return err
			}
			continue
		}
		fr := *e.frame
		if t0.IsZero() {
			t0, first = time.Now(), fr.PTS
		}
		at := t0.Add(time.Duration(float64(fr.PTS-first) / 90000 / f.speed * float64(time.Second)))
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			return ctx.Err()
		}
		if fr.Kind == tsframes.KindVideo {
			if c, ok := f.cues[video]; ok {
				if err := p.PublishCue(ctx, c); err != nil {
					return err
				}
			}
		}
		if err := p.Publish(ctx, fr); err != nil {
			return err
		}
		if fr.Kind == tsframes.KindVideo {
			if video == mark {
				marked <- time.Now()
			}
			video++
		}
	}
	return nil
}

// cueLog records the cues a viewer passes on, with its position then.
type cueLog struct {
	mu   sync.Mutex
	cues []tsframes.Cue
	at   []int64 // the viewer's position (PTS of the frame just written)
	got  chan struct{}
}

func watchCues(v *Viewer) *cueLog {
	l := &cueLog{got: make(chan struct{}, 16)}
	v.OnCue(func(c tsframes.Cue) {
		l.mu.Lock()
		l.cues = append(l.cues, c)
		l.at = append(l.at, int64(v.Position().PTS*90000/time.Second))
		l.mu.Unlock()
		select {
		case l.got <- struct{}{}:
		default:
		}
	})
	return l
}

func (l *cueLog) wait(t testing.TB, n int, timeout time.Duration) ([]tsframes.Cue, []int64) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if len(l.cues) >= n {
			defer l.mu.Unlock()
			return append([]tsframes.Cue(nil), l.cues...), append([]int64(nil), l.at...)
		}
		l.mu.Unlock()
		select {
		case <-l.got:
		case <-deadline:
			t.Fatalf("%d cues passed on within %s, want %d", len(l.cues), timeout, n)
		}
	}
}

// TestCuesFollowTheVideo: a live viewer and a time-shifted one get each
// cue of the window they play once, when the frame of its PTS is written
// to them (not when the cue came, a second before), also one published
// before the time-shifted window's first keyframe, and not the cues of
// before their window; so does a viewer after a seek.
func TestCuesFollowTheVideo(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts") // 30 fps, a keyframe a second
	srcV, _ := framesOf(events)
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "cues", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("cues", 1, events)
	live, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(live.Close)
	liveCues := watchCues(live)
	connectPeer(t, live, ann)
	live.Start()

	early, a, b := cueAt(t, srcV[45].PTS, 3), cueAt(t, srcV[60].PTS, 1), cueAt(t, srcV[120].PTS, 2)
	f := cueFeed{events: events, speed: 2, cues: map[int]tsframes.Cue{15: early, 30: a, 95: b}}
	marked := make(chan time.Time, 1)
	done := make(chan error, 1)
	finished := make(chan struct{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	go func() {
		defer close(finished)
		done <- f.run(ctx, pub, 75, marked)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})

	got, at := liveCues.wait(t, 3, 20*time.Second)
	for i, want := range []tsframes.Cue{early, a, b} {
		if got[i].PTS != want.PTS || got[i].EventID != want.EventID || string(got[i].Section) != string(want.Section) {
			t.Errorf("live cue %d: %+v, want %+v", i, got[i], want)
		}
		if at[i] != want.PTS {
			t.Errorf("live cue %d passed on at PTS %d, want at its frame's %d", i, at[i], want.PTS)
		}
	}

	// Time-shifted to frame 75: the window starts at the keyframe of frame
	// 60. Cue a, published before it (at frame 30) for frame 60, and cue b
	// come at their frames; the early cue (for frame 45) does not.
	var mark time.Time
	select {
	case mark = <-marked:
	case <-time.After(20 * time.Second):
		t.Fatal("frame 75 not published")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	shifted, err := r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true}, mark)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shifted.Close)
	shiftedCues := watchCues(shifted)
	connectPeer(t, shifted, ann)
	shifted.Start()
	got, at = shiftedCues.wait(t, 2, 20*time.Second)
	if got[0].EventID != 1 || at[0] != a.PTS || got[1].EventID != 2 || at[1] != b.PTS {
		t.Fatalf("time-shifted viewer got cues %d, %d at PTS %d, %d; want 1, 2 at %d, %d",
			got[0].EventID, got[1].EventID, at[0], at[1], a.PTS, b.PTS)
	}
	select {
	case <-shifted.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the time-shifted viewer did not reach the end of the log")
	}
	if got, _ := shiftedCues.wait(t, 2, time.Second); len(got) != 2 {
		t.Fatalf("time-shifted viewer got %d cues, want 2", len(got))
	}

	// The live viewer seeks back to frame 75: cues a and b again, at their
	// frames of the window it plays now.
	if err := live.Seek(waitCtx(t, 10*time.Second), mark); err != nil {
		t.Fatal(err)
	}
	got, at = liveCues.wait(t, 5, 20*time.Second)
	if got[3].EventID != 1 || at[3] != a.PTS || got[4].EventID != 2 || at[4] != b.PTS {
		t.Fatalf("after the seek: cues %d, %d at PTS %d, %d; want 1, 2 at %d, %d",
			got[3].EventID, got[4].EventID, at[3], at[4], a.PTS, b.PTS)
	}
}
