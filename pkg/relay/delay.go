package relay

import (
	"sync/atomic"
	"time"
)

// delaySampleEvery sets which frames the delay histograms sample (see
// ViewerStats.BusToRTP): video frames whose position in their GOP is a
// multiple of it (so every keyframe), and every delaySampleEvery-th audio
// packet of the stream. Every viewer that gets a sampled frame from the live
// feed records it, so a stream with N viewers records N observations per
// sampled frame, and the per-viewer cost is paid on about 1 frame in 32
// (every keyframe when GOPs are shorter).
const delaySampleEvery = 32

// NumDelayBuckets is the number of buckets of a DelayHistogram.
const NumDelayBuckets = len(delayBounds)

// delayBounds are the upper bounds of the delay buckets: 100 µs to 1 s.
// Never written.
var delayBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second,
}

// DelayBounds returns the upper bounds of the buckets of a DelayHistogram,
// in increasing order: 100 µs to 1 s.
func DelayBounds() [NumDelayBuckets]time.Duration { return delayBounds }

// DelayHistogram is a histogram of delays, laid out as Prometheus does.
type DelayHistogram struct {
	// Count is the number of observations, Sum their total.
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the observations ≤ DelayBounds()[i] (cumulative;
	// the observations above the last bound are only in Count).
	Buckets [NumDelayBuckets]uint64
}

// Add adds the observations of o to h.
func (h *DelayHistogram) Add(o DelayHistogram) {
	h.Count += o.Count
	h.Sum += o.Sum
	for i := range h.Buckets {
		h.Buckets[i] += o.Buckets[i]
	}
}

// delayRecorder accumulates a DelayHistogram: written by one goroutine (a
// viewer's writer), read at any time by Stats. Lock-free, and one cache line
// (64 bytes) so that a sampled frame touches little memory per viewer: the
// count is the sum of the buckets, the last of which holds the observations
// above the last bound. A bucket wraps after 2^32 observations (decades of
// samples for one viewer).
type delayRecorder struct {
	sum     atomic.Int64
	buckets [NumDelayBuckets + 1]atomic.Uint32 // not cumulative
}

// viewerDelays are the delay histograms of one viewer, allocated on their
// own: 128 bytes, so two cache lines of their own.
type viewerDelays struct {
	busToRTP, ingestToRTP delayRecorder
}

// observe records d.
func (r *delayRecorder) observe(d time.Duration) {
	i := 0
	for i < NumDelayBuckets && d > delayBounds[i] {
		i++
	}
	r.buckets[i].Add(1)
	r.sum.Add(int64(d))
}

// snapshot returns the histogram so far. Read while observe runs, its Sum
// may be one observation ahead of or behind its buckets; its buckets and
// Count never go back between snapshots.
func (r *delayRecorder) snapshot() DelayHistogram {
	var h DelayHistogram
	for i := range r.buckets {
		h.Count += uint64(r.buckets[i].Load())
		if i < NumDelayBuckets {
			h.Buckets[i] = h.Count
		}
	}
	h.Sum = time.Duration(r.sum.Load())
	return h
}
