package whepbench

import (
	"sort"
	"time"
)

// maxAnchorCandidates bounds the file keyframes tried for an anchor.
const maxAnchorCandidates = 16

// matchResult pairs the access units of a Schedule with their arrivals at
// the measured viewer.
type matchResult struct {
	fromEnd  []time.Duration // arrival - write of the AU's last packet
	fromNext []time.Duration // arrival - write of the next PES start
	matched  int
	// missing counts the AUs from the first anchor on that never arrived;
	// unmatched the arrivals (after the first anchor) that map to no AU
	// of the file, or to one not written yet.
	missing, unmatched int
	// anchors counts the times the RTP timeline was (re)anchored to the
	// file: 1, plus one per timestamp discontinuity.
	anchors int
}

// matchFrames matches arrivals (in arrival order) with the access units of
// sched, whose bursts were written at sent. An AU's last packet has left
// when the write of its last burst returned; the next PES start when the
// write of its burst began. Only arrivals from windowStart on count.
//
// The RTP timestamps of a viewer are the PTS plus a constant (90 kHz video
// clock), so one keyframe arrival identified in the file gives the PTS of
// every arrival after it. The first keyframe arrival of the window is the
// file keyframe, among the last ones written before it arrived, that makes
// every later arrival causal (arriving after its frame was written), the
// latest such one; later keyframe arrivals that do not land on a file
// keyframe (a discontinuity) are anchored again the same way. A latency
// above the GOP duration for the whole window would be ambiguous: it would
// be measured one GOP short.
func matchFrames(sched *Schedule, sent []burstWrite, arrivals []frameArrival, windowStart time.Time) matchResult {
	var r matchResult
	byPTS := make(map[int64]int, len(sched.aus))
	var keys []int // keyframe AUs written, in write order
	for i, au := range sched.aus {
		byPTS[au.pts] = i
		if au.key && !sent[au.last].end.IsZero() {
			keys = append(keys, i)
		}
	}
	start := sort.Search(len(arrivals), func(i int) bool { return !arrivals[i].at.Before(windowStart) })
	arrivals = arrivals[start:]

	received := make([]bool, len(sched.aus))
	firstAU := -1
	var anchorTS uint32
	var anchorPTS int64
	anchored := false
	ptsOf := func(a frameArrival) int64 { return anchorPTS + int64(int32(a.ts-anchorTS)) }
	for i, a := range arrivals {
		if a.key {
			idx, ok := byPTS[ptsOf(a)]
			if !anchored || !ok || !sched.aus[idx].key {
				pts, found := chooseAnchor(sched, sent, keys, byPTS, arrivals[i:])
				anchored = found
				if found {
					anchorTS, anchorPTS = a.ts, pts
					r.anchors++
					if firstAU < 0 {
						firstAU = byPTS[pts]
					}
				}
			}
		}
		if !anchored {
			continue
		}
		idx, ok := byPTS[ptsOf(a)]
		if !ok {
			r.unmatched++
			continue
		}
		au := sched.aus[idx]
		written := sent[au.last].end
		if written.IsZero() || a.at.Before(written) {
			r.unmatched++
			continue
		}
		if received[idx] {
			continue // a duplicate
		}
		received[idx] = true
		r.matched++
		r.fromEnd = append(r.fromEnd, a.at.Sub(written))
		if au.next >= 0 && !sent[au.next].start.IsZero() {
			r.fromNext = append(r.fromNext, a.at.Sub(sent[au.next].start))
		}
	}
	if firstAU >= 0 {
		for i := firstAU; i < len(sched.aus); i++ {
			if !received[i] && !sent[sched.aus[i].last].end.IsZero() {
				r.missing++
			}
		}
	}
	return r
}

// chooseAnchor returns the PTS of the file keyframe that the keyframe
// arrival arr[0] is: among the last maxAnchorCandidates keyframes written
// before it arrived, the latest one with the fewest later arrivals that
// would map to no frame or to a frame written after they arrived. found is
// false when no keyframe had been written.
func chooseAnchor(sched *Schedule, sent []burstWrite, keys []int, byPTS map[int64]int, arr []frameArrival) (pts int64, found bool) {
	a := arr[0]
	last := sort.Search(len(keys), func(j int) bool { return sent[sched.aus[keys[j]].last].end.After(a.at) }) - 1
	best := -1
	for k := last; k >= 0 && k > last-maxAnchorCandidates; k-- {
		cand := sched.aus[keys[k]].pts
		bad := 0
		for _, b := range arr {
			idx, ok := byPTS[cand+int64(int32(b.ts-a.ts))]
			if !ok {
				bad++
				continue
			}
			if w := sent[sched.aus[idx].last].end; w.IsZero() || b.at.Before(w) {
				bad++
			}
		}
		if best < 0 || bad < best {
			best, pts, found = bad, cand, true
		}
		if bad == 0 {
			break
		}
	}
	return pts, found
}
