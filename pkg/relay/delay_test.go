package relay

import (
	"testing"
	"time"
	"unsafe"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestDelayRecorder(t *testing.T) {
	bounds := DelayBounds()
	if bounds[0] != 100*time.Microsecond || bounds[NumDelayBuckets-1] != time.Second {
		t.Fatalf("bounds %v, want 100µs to 1s", bounds)
	}
	for i := 1; i < NumDelayBuckets; i++ {
		if bounds[i] <= bounds[i-1] {
			t.Fatalf("bounds not increasing: %v", bounds)
		}
	}
	cases := []struct {
		d      time.Duration
		bucket int // first bucket that counts it; NumDelayBuckets: only in Count
	}{
		{0, 0},
		{100 * time.Microsecond, 0}, // a bound is in its own bucket
		{100*time.Microsecond + 1, 1},
		{3 * time.Millisecond, 5},
		{time.Second, NumDelayBuckets - 1},
		{time.Second + 1, NumDelayBuckets},
		{time.Minute, NumDelayBuckets},
	}
	var r delayRecorder
	var want DelayHistogram
	for _, c := range cases {
		r.observe(c.d)
		want.Count++
		want.Sum += c.d
		for i := c.bucket; i < NumDelayBuckets; i++ {
			want.Buckets[i]++
		}
		if got := r.snapshot(); got != want {
			t.Fatalf("after %s: %+v, want %+v", c.d, got, want)
		}
	}
	if size := unsafe.Sizeof(delayRecorder{}); size != 64 {
		t.Fatalf("delayRecorder is %d bytes, want one cache line (64)", size)
	}
	// Add sums histograms.
	sum := want
	sum.Add(want)
	if sum.Count != 2*want.Count || sum.Sum != 2*want.Sum || sum.Buckets[5] != 2*want.Buckets[5] {
		t.Fatalf("Add: %+v, want twice %+v", sum, want)
	}
}

// sampledFlags tells which of msgs the hub samples for the delay
// histograms: video frames at a multiple of delaySampleEvery in their GOP,
// every delaySampleEvery-th audio packet. msgs must start at a keyframe.
func sampledFlags(msgs []bus.Message) []bool {
	out := make([]bool, len(msgs))
	gopIndex, audio := 0, 0
	for i, m := range msgs {
		if m.Tracks != nil {
			continue
		}
		switch m.Frame.Codec {
		case tsframes.CodecH264:
			if m.Frame.Key {
				gopIndex = 0
			} else {
				gopIndex++
			}
			out[i] = gopIndex%delaySampleEvery == 0
		case tsframes.CodecOpus:
			out[i] = audio%delaySampleEvery == 0
			audio++
		}
	}
	return out
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// checkDelays checks that h has n observations, each in [lo, hi] as far as
// its buckets tell.
func checkDelays(t testing.TB, what string, h DelayHistogram, n int, lo, hi time.Duration) {
	t.Helper()
	if h.Count != uint64(n) {
		t.Fatalf("%s: %d observations, want %d", what, h.Count, n)
	}
	if h.Sum < time.Duration(n)*lo || h.Sum > time.Duration(n)*hi {
		t.Fatalf("%s: sum %s of %d observations, want each in [%s, %s]", what, h.Sum, n, lo, hi)
	}
	for i, b := range DelayBounds() {
		if i > 0 && h.Buckets[i] < h.Buckets[i-1] {
			t.Fatalf("%s: buckets not cumulative: %v", what, h.Buckets)
		}
		if b < lo && h.Buckets[i] != 0 {
			t.Fatalf("%s: %d observations ≤ %s, want none below %s (%v)", what, h.Buckets[i], b, lo, h.Buckets)
		}
		if b >= hi && h.Buckets[i] != h.Count {
			t.Fatalf("%s: %d of %d observations ≤ %s, want all ≤ %s (%v)", what, h.Buckets[i], h.Count, b, hi, h.Buckets)
		}
	}
}

func TestViewerDelayHistograms(t *testing.T) {
	checkLeaks(t)
	const ingestLag = 200 * time.Millisecond
	msgs := messages("d", 1, readFixture(t, "av.ts"))
	// Stored ingestLag before it reaches the hub (a wall-clock time, as
	// JetStream metadata gives).
	published := time.Now().Add(-ingestLag).Round(0)
	for i := range msgs {
		msgs[i].Published = published
	}
	sampled := sampledFlags(msgs)
	r, b := newTestRelay(t, Config{ViewerQueue: len(msgs)}, nil)
	ann := firstAnnouncement(t, msgs)

	// a gets everything live; c joins mid-stream and gets the GOP so far
	// replayed, then the rest of the video (which the fake bus delivers at
	// once) at the replay's pace: none of it is sampled; its audio is live.
	a, recA := join(t, r, ann)
	a.Start()
	start := time.Now()
	cut := splitAfterVideo(msgs, 45) // mid-GOP: 1 s GOP, 15 frames into the second
	b.send("d", msgs[:cut]...)
	c, recC := join(t, r, ann)
	c.Start()
	b.send("d", msgs[cut:]...)
	srcV, srcA := framesOfMsgs(msgs)
	_, liveA := framesOfMsgs(msgs[cut:])
	waitFrames(t, recA, len(srcV), len(srcA))
	waitFrames(t, recC, len(srcV)-30, len(liveA))
	// Close waits for the writers: every observation is in.
	a.Close()
	c.Close()
	elapsed := time.Since(start)

	sa, sc := a.Stats(), c.Stats()
	if sc.Replayed != 15 {
		t.Fatalf("late viewer replayed %d frames, want 15", sc.Replayed)
	}
	nA, nC := countTrue(sampled), 0
	for i, m := range msgs[cut:] {
		if sampled[cut+i] && m.Tracks == nil && m.Frame.Codec == tsframes.CodecOpus {
			nC++
		}
	}
	if nA < 10 || nC >= nA {
		t.Fatalf("%d and %d sampled frames: the fixture no longer fits the test", nA, nC)
	}
	// No observation can be longer than the test took.
	checkDelays(t, "bus to RTP (viewer a)", sa.BusToRTP, nA, 0, elapsed)
	checkDelays(t, "bus to RTP (viewer c)", sc.BusToRTP, nC, 0, elapsed)
	// Ingest to RTP is the bus-to-RTP delay plus at least ingestLag.
	since := time.Since(published)
	checkDelays(t, "ingest to RTP (viewer a)", sa.IngestToRTP, nA, ingestLag, since)
	checkDelays(t, "ingest to RTP (viewer c)", sc.IngestToRTP, nC, ingestLag, since)
	t.Logf("sampled frames: %d (viewer a), %d (viewer c)", nA, nC)
	t.Logf("bus to RTP: %d observations, mean %s (test took %s)", sa.BusToRTP.Count,
		sa.BusToRTP.Sum/time.Duration(sa.BusToRTP.Count), elapsed)
}

func TestViewerDelayWithoutPublishTime(t *testing.T) {
	checkLeaks(t)
	msgs := messages("d", 1, readFixture(t, "av.ts"))
	r, b := newTestRelay(t, Config{ViewerQueue: len(msgs)}, nil)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	v.Start()
	b.send("d", msgs...)
	srcV, srcA := framesOfMsgs(msgs)
	waitFrames(t, rec, len(srcV), len(srcA))
	v.Close()
	st := v.Stats()
	if want := uint64(countTrue(sampledFlags(msgs))); st.BusToRTP.Count != want || st.IngestToRTP.Count != 0 {
		t.Fatalf("bus to RTP %d observations (want %d), ingest to RTP %d (want 0)",
			st.BusToRTP.Count, want, st.IngestToRTP.Count)
	}
}

// BenchmarkDelayObserve measures what a viewer pays for a sampled frame:
// the clock read and the histogram update.
func BenchmarkDelayObserve(b *testing.B) {
	v := &Viewer{hub: &hub{clock: time.Now()}, delays: new(viewerDelays)}
	f := &frame{sampled: true, hasIngest: true, ingest: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		v.observeDelay(f)
	}
}
