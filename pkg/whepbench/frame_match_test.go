package whepbench

import (
	"slices"
	"testing"
	"time"
)

// syntheticSchedule has n access units 3000 ticks apart, one per burst,
// a keyframe every gop, written at t0 + i*33 ms.
func syntheticSchedule(n, gop int, t0 time.Time) (*Schedule, []burstWrite) {
	s := &Schedule{}
	sent := make([]burstWrite, n)
	for i := range n {
		next := i + 1
		if i == n-1 {
			next = -1
		}
		s.bursts = append(s.bursts, burst{at: time.Duration(i) * 33 * time.Millisecond})
		s.aus = append(s.aus, accessUnit{pts: 8589930000 + int64(i)*3000, key: i%gop == 0, last: i, next: next})
		w := t0.Add(time.Duration(i) * 33 * time.Millisecond)
		sent[i] = burstWrite{start: w.Add(-time.Millisecond), end: w} // writes take 1 ms
	}
	return s, sent
}

func TestMatchFrames(t *testing.T) {
	t0 := time.Unix(5000, 0)
	sched, sent := syntheticSchedule(100, 30, t0)
	const offset = uint32(0xfffff000) // RTP = PTS + offset, wrapping past 2^32
	rtp := func(i int) uint32 { return uint32(sched.aus[i].pts) + offset }
	var arrivals []frameArrival
	// Join burst before the window: compressed timestamps, must be ignored.
	for i := range 5 {
		arrivals = append(arrivals, frameArrival{ts: 1000 + uint32(i), at: t0.Add(time.Millisecond), key: i == 0})
	}
	windowStart := sent[25].end
	for i := 5; i < 100; i++ {
		switch i {
		case 70: // lost
			continue
		case 80: // a timestamp of no frame of the file
			arrivals = append(arrivals, frameArrival{ts: rtp(i) + 7, at: sent[i].end.Add(time.Millisecond)})
			continue
		}
		lat := time.Duration(i%10+1) * time.Millisecond // 1..10 ms
		arrivals = append(arrivals, frameArrival{ts: rtp(i), at: sent[i].end.Add(lat), key: sched.aus[i].key})
		if i == 50 { // a duplicate
			arrivals = append(arrivals, frameArrival{ts: rtp(i), at: sent[i].end.Add(20 * time.Millisecond)})
		}
	}
	r := matchFrames(sched, sent, arrivals, windowStart)
	// The anchor is keyframe 30; frames 30..99 minus 70 and 80.
	if r.anchors != 1 || r.matched != 68 || r.missing != 2 || r.unmatched != 1 {
		t.Fatalf("anchors %d matched %d missing %d unmatched %d; want 1, 68, 2, 1", r.anchors, r.matched, r.missing, r.unmatched)
	}
	s := Summarize(r.fromEnd)
	if s.Min != time.Millisecond || s.Max != 10*time.Millisecond || s.Count != 68 {
		t.Fatalf("from AU end: %+v", s)
	}
	// The next PES start begins to be written 32 ms after the AU's write
	// returned: latency - 32 ms; the last AU has no next PES.
	n := Summarize(r.fromNext)
	if n.Count != 67 || n.Min != -31*time.Millisecond || n.Max != -22*time.Millisecond {
		t.Fatalf("from next PES: %+v", n)
	}
}

func TestMatchFramesNoAnchor(t *testing.T) {
	t0 := time.Unix(5000, 0)
	sched, sent := syntheticSchedule(40, 30, t0)
	// Only non-key frames in the window: nothing can be matched.
	var arrivals []frameArrival
	for i := 1; i < 30; i++ {
		arrivals = append(arrivals, frameArrival{ts: uint32(sched.aus[i].pts), at: sent[i].end.Add(time.Millisecond)})
	}
	r := matchFrames(sched, sent, arrivals, t0)
	if r.anchors != 0 || r.matched != 0 || r.missing != 0 || r.unmatched != 0 {
		t.Fatalf("result %+v; want nothing", r)
	}
	// A keyframe that arrives before any keyframe was written anchors on
	// nothing.
	early := []frameArrival{{ts: 1, at: t0.Add(-time.Second), key: true}}
	if r := matchFrames(sched, sent, early, t0.Add(-2*time.Second)); r.anchors != 0 {
		t.Fatalf("early keyframe: %+v", r)
	}
	// An arrival before its frame was written is not a match.
	before := []frameArrival{
		{ts: uint32(sched.aus[0].pts), at: sent[0].end.Add(time.Millisecond), key: true},
		{ts: uint32(sched.aus[5].pts), at: sent[4].end},
	}
	if r := matchFrames(sched, sent, before, t0); r.matched != 1 || r.unmatched != 1 {
		t.Fatalf("arrival before write: %+v", r)
	}
}

// TestMatchFramesLongLatency: the first keyframe of the window arrives
// after the next keyframe was written (latency above the GOP); the latency
// falls later. The anchor is the keyframe that keeps every arrival causal,
// not the last one written.
func TestMatchFramesLongLatency(t *testing.T) {
	t0 := time.Unix(5000, 0)
	sched, sent := syntheticSchedule(150, 30, t0) // a keyframe every 990 ms
	const offset = uint32(12345)
	var arrivals []frameArrival
	for i := 30; i < 150; i++ {
		lat := 10 * time.Millisecond
		if i < 60 {
			lat = 1500 * time.Millisecond // keyframe 30 arrives after 60 was written
		}
		arrivals = append(arrivals, frameArrival{ts: uint32(sched.aus[i].pts) + offset, at: sent[i].end.Add(lat), key: sched.aus[i].key})
	}
	// Arrivals are in arrival order.
	slices.SortStableFunc(arrivals, func(a, b frameArrival) int { return a.at.Compare(b.at) })
	r := matchFrames(sched, sent, arrivals, t0)
	if r.anchors != 1 || r.matched != 120 || r.missing != 0 || r.unmatched != 0 {
		t.Fatalf("anchors %d matched %d missing %d unmatched %d; want 1, 120, 0, 0", r.anchors, r.matched, r.missing, r.unmatched)
	}
	s := Summarize(r.fromEnd)
	if s.Max != 1500*time.Millisecond || s.Min != 10*time.Millisecond || s.Count != 120 {
		t.Fatalf("from AU end: %+v", s)
	}
}

// TestMatchFramesDiscontinuity: the RTP timestamps jump (a new epoch); the
// keyframe after the jump anchors again.
func TestMatchFramesDiscontinuity(t *testing.T) {
	t0 := time.Unix(5000, 0)
	sched, sent := syntheticSchedule(120, 30, t0)
	var arrivals []frameArrival
	for i := range 120 {
		ts := uint32(sched.aus[i].pts) + 1000
		if i >= 60 {
			ts += 777777 // the offset changes at keyframe 60
		}
		arrivals = append(arrivals, frameArrival{ts: ts, at: sent[i].end.Add(5 * time.Millisecond), key: sched.aus[i].key})
	}
	r := matchFrames(sched, sent, arrivals, t0)
	if r.anchors != 2 || r.matched != 120 || r.missing != 0 || r.unmatched != 0 {
		t.Fatalf("anchors %d matched %d missing %d unmatched %d; want 2, 120, 0, 0", r.anchors, r.matched, r.missing, r.unmatched)
	}
	if s := Summarize(r.fromEnd); s.Min != 5*time.Millisecond || s.Max != 5*time.Millisecond {
		t.Fatalf("from AU end: %+v", s)
	}
}
