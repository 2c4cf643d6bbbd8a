package whepbench

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// fakeViewer is a viewer as the readers leave it (times in ns on the
// client clock).
func fakeViewer(post, connected, ttff, first, last, maxGap, packets, bytes, keyframes int64) *viewer {
	v := &viewer{}
	v.postAt.Store(post)
	v.connectedAt.Store(connected)
	v.ttff.Store(ttff)
	v.firstAt.Store(first)
	v.lastAt.Store(last)
	v.maxGap.Store(maxGap)
	v.packets.Store(packets)
	v.bytes.Store(bytes)
	v.keyframes.Store(keyframes)
	return v
}

func TestViewerStats(t *testing.T) {
	const s = int64(time.Second)
	const ms = int64(time.Millisecond)
	now := 100 * s
	viewers := []*viewer{
		// Healthy: connected 40 ms after its POST, keyframe at 60 ms.
		fakeViewer(1*s, 1*s+40*ms, 60*ms, 1*s+50*ms, now-10*ms, 100*ms, 1000, 1_000_000, 5),
		fakeViewer(2*s, 2*s+20*ms, 30*ms, 2*s+25*ms, now-20*ms, 50*ms, 3000, 2_000_000, 5),
		// A silence of 2.5 s in the middle: dropped.
		fakeViewer(3*s, 3*s+10*ms, 20*ms, 3*s+15*ms, now, 2500*ms, 500, 100, 1),
		// Silent for 3 s at the end: dropped.
		fakeViewer(4*s, 4*s+10*ms, 20*ms, 4*s+15*ms, now-3*s, 40*ms, 500, 100, 1),
		// Exactly DropGap is not a drop.
		fakeViewer(5*s, 5*s+10*ms, 20*ms, 5*s+15*ms, now-2*s, 2*s, 500, 100, 1),
		// RTP but never a complete keyframe.
		fakeViewer(6*s, 6*s+10*ms, 0, 6*s+15*ms, now, 40*ms, 500, 100, 0),
		// Connected, no RTP at all.
		fakeViewer(7*s, 7*s+10*ms, 0, 0, 0, 0, 0, 0, 0),
		nil, // never started (the run was cancelled)
	}
	for i := range 3 {
		f := &viewer{err: errors.New("POST status 503: busy")}
		if i == 2 {
			f.err = errors.New("connect timeout")
		}
		viewers = append(viewers, f)
	}
	// 20 distinct failures: the report keeps maxFailureKinds of them.
	for i := range 20 {
		viewers = append(viewers, &viewer{err: errors.New("reason " + strconv.Itoa(i))})
	}
	start := counts{packets: 1000, bytes: 1_000_000}
	end := counts{packets: 1000 + 7*100*10, bytes: 1_000_000 + 7*250_000*10}
	st := viewerStats(viewers, now, start, end, 10*time.Second)
	if st.Viewers != len(viewers) || st.Connected != 7 || st.Failed != 23 || st.Dropped != 2 || st.NoMedia != 1 || st.NoKeyframe != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st.Failures["POST status 503: busy"] != 2 || st.Failures["connect timeout"] != 1 || len(st.Failures) != maxFailureKinds+1 ||
		st.Failures["other"] != 23-3-(maxFailureKinds-2) {
		t.Fatalf("failures %v", st.Failures)
	}
	// TTFF of the 5 viewers with a keyframe (the dropped ones included).
	want := Summary{Count: 5, Min: 20 * time.Millisecond, P50: 20 * time.Millisecond, P95: 60 * time.Millisecond,
		P99: 60 * time.Millisecond, Max: 60 * time.Millisecond, Mean: 30 * time.Millisecond}
	if st.TTFF != want {
		t.Fatalf("TTFF %+v, want %+v", st.TTFF, want)
	}
	if st.Connect.Count != 7 || st.Connect.Max != 40*time.Millisecond || st.Connect.Min != 10*time.Millisecond {
		t.Fatalf("connect %+v", st.Connect)
	}
	// Gaps: 100, 50, 2500, 3000 (end), 2000, 40 ms.
	if st.MaxGap.Count != 6 || st.MaxGap.Max != 3*time.Second || st.MaxGap.Min != 40*time.Millisecond {
		t.Fatalf("max gap %+v", st.MaxGap)
	}
	// 7000 packets and 17.5 MB over 10 s for 7 viewers.
	if st.PacketRate != 100 || st.Bitrate != 2_000_000 {
		t.Fatalf("%v packets/s, %v b/s", st.PacketRate, st.Bitrate)
	}
}
