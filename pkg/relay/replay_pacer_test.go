package relay

import (
	"math"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// auTimes returns, for each video access unit of pkts in order, when its
// first and its last packet were written, and its timestamp.
func auTimes(pkts []sent) (first, last []time.Time, ts []uint32) {
	video, _ := splitKinds(pkts)
	start := true
	for _, p := range video {
		if start {
			first = append(first, p.at)
			ts = append(ts, p.hdr.Timestamp)
		}
		start = p.hdr.Marker
		if start {
			last = append(last, p.at)
		}
	}
	return first, last, ts
}

// checkCatchUpSteps checks the timestamps ts of the access units a viewer
// got from a keyframe on, whose PTS are pts: they advance by the media time
// divided by rate while the viewer catches up with the live feed, then by
// the media time, continuously. It returns the first live access unit.
func checkCatchUpSteps(t testing.TB, ts []uint32, pts []int64, rate float64) int {
	t.Helper()
	live := 0
	for i := 1; i < len(ts); i++ {
		media := uint32(pts[i] - pts[i-1])
		fast := uint32(int64(float64(pts[i]-pts[0])/rate)) - uint32(int64(float64(pts[i-1]-pts[0])/rate))
		switch d := ts[i] - ts[i-1]; {
		case live == 0 && d == fast:
		case d == media:
			if live == 0 {
				live = i
			}
		default:
			t.Errorf("access unit %d: timestamp step %d, want %d (catching up) or %d (live), caught up at %d", i, d, fast, media, live)
		}
	}
	if live == 0 {
		t.Errorf("never caught up with the live feed")
	}
	return live
}

func TestReplayIsPacedThenLive(t *testing.T) {
	checkLeaks(t)
	const (
		rate    = 4
		replayN = 60 // frames into the 4 s GOP of gop4.ts: a 2 s replay
		liveN   = 45 // live frames published in real time after the join
		// slack bounds how late a frame may be written after it is due
		// (timer and scheduling delays on a busy machine under -race).
		slack = 150 * time.Millisecond
	)
	msgs := messages("p", 1, readFixture(t, "gop4.ts"))
	r, b := newTestRelay(t, Config{ReplayRate: rate, ViewerQueue: 1024}, nil)
	early, _ := join(t, r, firstAnnouncement(t, msgs))
	early.Start()
	cut := splitAfterVideo(msgs, replayN)
	b.send("p", msgs[:cut]...)

	v, rec := join(t, r, firstAnnouncement(t, msgs))
	started := time.Now()
	v.Start()
	// The live feed, in real time from the join on: video frame j of it
	// (and the audio before it) at j frame intervals.
	end := splitAfterVideo(msgs[cut:], liveN) + cut
	published := make([]time.Time, 0, liveN)
	ticker := time.NewTicker(time.Second / 30)
	defer ticker.Stop()
	from := cut
	for j := 1; j <= liveN; j++ {
		<-ticker.C
		to := splitAfterVideo(msgs[from:end], 1) + from
		published = append(published, time.Now())
		b.send("p", msgs[from:to]...)
		from = to
	}
	srcV, _ := framesOfMsgs(msgs[:end])
	pkts := waitFrames(t, rec, len(srcV), 0)
	first, last, ts := auTimes(pkts)
	if len(first) != len(srcV) {
		t.Fatalf("%d access units written, want %d", len(first), len(srcV))
	}

	// The keyframe at once; every frame of the backlog at its pace: never
	// before the media time since the keyframe divided by rate.
	if d := first[0].Sub(started); d > slack {
		t.Errorf("keyframe written %s after Start, want at once", d)
	}
	due := func(i int) time.Duration {
		return time.Duration(srcV[i].PTS-srcV[0].PTS) * time.Second / videoClockRate / rate
	}
	for i := 1; i < len(srcV); i++ {
		if d := first[i].Sub(first[0]); d < due(i)-5*time.Millisecond {
			t.Errorf("frame %d written %s after the keyframe, due at %s", i, d, due(i))
		}
	}
	// The replay took its duration / rate.
	replay := last[replayN-1].Sub(first[0])
	if want := due(replayN - 1); replay < want-5*time.Millisecond || replay > want+slack {
		t.Errorf("replay of %d frames took %s, want %s (its %s / %d)", replayN, replay, want,
			time.Duration(srcV[replayN-1].PTS-srcV[0].PTS)*time.Second/videoClockRate, rate)
	}
	// Caught up after about the replayed duration / (rate - 1): from then
	// on each live frame is written as it arrives.
	catchUp := time.Duration(float64(srcV[replayN-1].PTS-srcV[0].PTS) / videoClockRate / (rate - 1) * float64(time.Second))
	for j := range published {
		i := replayN + j
		if published[j].Sub(started) < catchUp+slack {
			continue
		}
		if d := last[i].Sub(published[j]); d > slack {
			t.Errorf("live frame %d written %s after it arrived, %s after the join: not caught up", i, d, published[j].Sub(started))
		}
	}
	// The timestamps advance with the sending.
	pts := make([]int64, len(srcV))
	for i := range srcV {
		pts[i] = srcV[i].PTS
	}
	live := checkCatchUpSteps(t, ts, pts, rate)
	st := v.Stats()
	if st.Replayed != replayN || st.Video.Drops != 0 {
		t.Errorf("replayed %d frames, dropped %d; want %d, 0", st.Replayed, st.Video.Drops, replayN)
	}
	// The catch-up ended with the last frame sent at the pace.
	if want := first[live-1].Sub(started); st.CatchUp < want-slack || st.CatchUp > want+slack {
		t.Errorf("Stats().CatchUp %s, want about %s (frame %d, the last one paced)", st.CatchUp, want, live-1)
	}
	t.Logf("replay of %d frames (%s) in %s at %dx; caught up after about %s (at frame %d, %s after the join)", replayN,
		time.Duration(srcV[replayN-1].PTS-srcV[0].PTS)*time.Second/videoClockRate, replay.Round(time.Millisecond), rate,
		catchUp.Round(time.Millisecond), live, first[live].Sub(started).Round(time.Millisecond))
}

func TestReplayRateValidation(t *testing.T) {
	for _, rate := range []float64{-1, 0.5, 1, MaxReplayRate + 1, math.NaN(), math.Inf(1)} {
		if _, err := newRelay(Config{ReplayRate: rate}, newFakeBus().subscribe, nil); err == nil {
			t.Errorf("ReplayRate %g accepted", rate)
		}
	}
	r, err := newRelay(Config{}, newFakeBus().subscribe, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.cfg.ReplayRate != DefaultReplayRate {
		t.Errorf("default ReplayRate %g, want %d", r.cfg.ReplayRate, DefaultReplayRate)
	}
}

// A catch-up whose backlog would exceed the replay plus the viewer's queue
// drops the live video frames beyond, up to the next keyframe, like a full
// queue: what the viewer gets is the replay and then the stream's frames in
// order, skipping only to a keyframe, without a gap in its sequence numbers.
func TestCatchUpBacklogBounded(t *testing.T) {
	checkLeaks(t)
	const replayN, queue, liveN = 60, 16, 100
	msgs := messages("b", 1, readFixture(t, "gop4.ts"))
	r, b := newTestRelay(t, Config{ViewerQueue: queue}, nil)
	// A member that is never started keeps the hub and its GOP cache.
	idle, err := r.Join(t.Context(), firstAnnouncement(t, msgs), Want{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	cut := splitAfterVideo(msgs, replayN)
	b.send("b", msgs[:cut]...)
	v, err := r.Join(t.Context(), firstAnnouncement(t, msgs), Want{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rec := newRecorder()
	bind(t, v.VideoTrack(), ssrcVideo, rec)
	v.Start()
	// liveN live frames at once: far more than the backlog may hold while
	// the replay is paced.
	b.send("b", msgs[cut:splitAfterVideo(msgs, replayN+liveN)]...)
	pkts := rec.waitFor(t, 10*time.Second, "the frames not dropped", func(p []sent) bool {
		n, _ := countFrames(p)
		return uint64(n)+v.Stats().Video.Drops >= replayN+liveN
	})
	srcV, _ := framesOfMsgs(msgs)
	aus := depacketizeH264(t, pkts) // fails on any sequence gap
	drops := v.Stats().Video.Drops
	if drops < liveN-queue-1 || len(aus)+int(drops) != replayN+liveN {
		t.Fatalf("%d frames written and %d dropped, want %d in all and at least %d dropped", len(aus), drops, replayN+liveN, liveN-queue-1)
	}
	// The stream's frames from the keyframe on, in order; a skip only
	// after the replay and only to a keyframe.
	j := 0
	for i := range aus {
		if sameNALs(nalsOf(t, srcV[j].Data), aus[i].nals) != nil {
			k := j + 1
			for k < len(srcV) && !(srcV[k].Key && sameNALs(nalsOf(t, srcV[k].Data), aus[i].nals) == nil) {
				k++
			}
			if i < replayN || k == len(srcV) {
				t.Fatalf("access unit %d is neither frame %d nor a later keyframe", i, j)
			}
			j = k
		}
		j++
	}
}

// After the keyframe the replay pauses for the keyframe's transmission time
// at the replay's rate times the bitrate of the previous GOP (a keyframe is
// several frames' worth of bytes): the frames after it are due that much
// later, and their timestamps say so.
func TestReplayPausesAfterKeyframe(t *testing.T) {
	checkLeaks(t)
	const rate, replayN = 4, 30
	msgs := messages("k", 1, readFixture(t, "gop4.ts"))
	srcV, _ := framesOfMsgs(msgs)
	if !srcV[120].Key {
		t.Fatal("gop4.ts: frame 120 is no longer a keyframe")
	}
	payloadBytes := func(fr tsframes.Frame) int {
		payloads, _, err := packetizeH264(fr.Data, MaxPayload)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range payloads {
			n += len(p)
		}
		return n
	}
	gopBytes := 0
	for _, fr := range srcV[:120] {
		gopBytes += payloadBytes(fr)
	}
	span := float64(srcV[119].PTS-srcV[0].PTS) * 120 / 119
	wantGap := uint32(float64(payloadBytes(srcV[120])) / (float64(gopBytes) / span * rate))
	if wantGap < 900 { // 10 ms
		t.Fatalf("gap of %d ticks: the fixture no longer fits the test", wantGap)
	}

	r, b := newTestRelay(t, Config{ReplayRate: rate}, nil)
	idle, err := r.Join(t.Context(), firstAnnouncement(t, msgs), Want{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	b.send("k", msgs[:splitAfterVideo(msgs, 120+replayN)]...)
	v, err := r.Join(t.Context(), firstAnnouncement(t, msgs), Want{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rec := newRecorder()
	bind(t, v.VideoTrack(), ssrcVideo, rec)
	v.Start()
	pkts := waitFrames(t, rec, replayN, 0)
	first, _, ts := auTimes(pkts)
	media := uint32(srcV[121].PTS-srcV[120].PTS) / rate
	if d := ts[1] - ts[0]; d+1 < wantGap+media || d > wantGap+media+1 { // rounding
		t.Errorf("second frame %d ticks after the keyframe, want %d (gap) + %d", d, wantGap, media)
	}
	due := time.Duration(wantGap+media) * time.Second / videoClockRate
	if d := first[1].Sub(first[0]); d < due-5*time.Millisecond {
		t.Errorf("second frame written %s after the keyframe, due %s after", d, due)
	}
	t.Logf("pause after the keyframe: %d ticks (%s)", wantGap, time.Duration(wantGap)*time.Second/videoClockRate)
}
