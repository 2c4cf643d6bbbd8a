//go:build external

package tests

import (
	"fmt"
	"testing"
	"time"
)

// Targets of a viewer joining mid-GOP.
const (
	// e2eJoinAfterLive is how long after gop4.ts (a keyframe at 0, 4 and
	// 8 s) went live the viewer opens the player: its POST follows from
	// 0.3 s (an idle machine) to 2 s (a busy one) later, 1.3 to 3 s into
	// the first GOP.
	e2eJoinAfterLive = time.Second
	// e2eMaxTTFF bounds the time from the WHEP POST to the first frame
	// presented (issue 16).
	e2eMaxTTFF = 300 * time.Millisecond
	// e2eJoinClean is how long after its first frame the viewer must have
	// lost no packet and had no freeze (issue 16).
	e2eJoinClean = 10 * time.Second
	// e2eJitterSettle is how long after the first frame the jitter-buffer
	// window starts, and e2eJitterWindow its length.
	e2eJitterSettle = 3 * time.Second
	e2eJitterWindow = 3 * time.Second
	// e2eMaxJitterBuffer bounds the mean video jitter-buffer delay in the
	// steady state.
	e2eMaxJitterBuffer = 200 * time.Millisecond
)

// TestE2EJoinMidGOP joins gop4.ts (4 s GOP, looped) over 1 s after a keyframe:
// the node replays the GOP since that keyframe (the keyframe at once, the
// rest paced), the first frame is presented within 300 ms of the WHEP POST,
// 3 s later the video jitter buffer holds frames for less than 200 ms on
// average, and over the 10 s after the first frame Chromium reports no
// video packet lost and no freeze. It logs the figures (FIGURE ttff_ms=,
// FIGURE jitter_buffer_ms=, FIGURE join_packets_lost=).
func TestE2EJoinMidGOP(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	ingestStart := time.Now()
	stack.ingest(t, "gop", "gop4.ts", true)
	stack.waitLive(t, ctx, "gop")
	liveAt := time.Now()
	e2eWaitUntil(t, ctx, liveAt.Add(e2eJoinAfterLive))

	stack.play(t, page, "gop", 10*time.Second)
	if err := waitJS(page, 5*time.Second, `whepcast.timing && whepcast.timing.firstFrame !== null`); err != nil {
		t.Fatal(err)
	}
	firstSeen := time.Now()
	tm, err := evalJS[e2eTiming](page, `whepcast.timing`)
	if err != nil {
		t.Fatal(err)
	}
	if tm.Post == nil || tm.Response == nil || tm.Connected == nil || tm.FirstFrame == nil || tm.Start == nil {
		t.Fatalf("incomplete timing: %+v", tm)
	}
	ttff := *tm.FirstFrame - *tm.Post
	t.Logf("FIGURE ttff_ms=%d", int(ttff+0.5))
	meta := ""
	if m := tm.FirstFrameMeta; m != nil && m.ReceiveTime != nil && m.ProcessingDuration != nil {
		meta = ", first frame received at " + e2eMsSince(*m.ReceiveTime, *tm.Post) + fmt.Sprintf(" (processing %.1f ms)", *m.ProcessingDuration*1000)
	}
	t.Logf("player opened %v after the stream went live (%v after ffmpeg started): navigation→player start %s, start→POST (offer, ICE gathering) %s, POST→201 %s, 201→connected %s, connected→first frame %s%s; first frame %s after navigation start",
		e2eJoinAfterLive, liveAt.Sub(ingestStart).Round(time.Millisecond), e2eMs(*tm.Start), e2eMs(*tm.Post-*tm.Start), e2eMs(*tm.Response-*tm.Post),
		e2eMs(*tm.Connected-*tm.Response), e2eMs(*tm.FirstFrame-*tm.Connected), meta, e2eMs(*tm.FirstFrame))

	// The join was mid-GOP: the node replayed the frames since the keyframe.
	sess := stack.session(t, ctx)
	t.Logf("node: replayed %d frames of the GOP (joined %.2f s after the keyframe), relay time to first frame %v",
		sess.Stats.Replayed, float64(sess.Stats.Replayed)/30, sess.Stats.TimeToFirstFrame)
	if sess.Stats.Replayed < 30 || sess.Stats.Replayed >= 120 {
		t.Errorf("the node replayed %d frames at the join, want 30 to 119 (a join 1 s or more after a keyframe of a 4 s GOP)", sess.Stats.Replayed)
	}
	if ttff >= float64(e2eMaxTTFF/time.Millisecond) {
		t.Errorf("first frame %.0f ms after the WHEP POST, want < %v", ttff, e2eMaxTTFF)
	}

	// Steady state: the jitter-buffer delay per frame over a window.
	e2eWaitUntil(t, ctx, firstSeen.Add(e2eJitterSettle))
	samples := stack.sampleWindow(t, page, int(e2eJitterWindow/(500*time.Millisecond)), 500*time.Millisecond)
	e2eCheckVideo(t, samples)
	a, b := samples[0].stats.Video, samples[len(samples)-1].stats.Video
	emitted := b.JitterBufferEmittedCount - a.JitterBufferEmittedCount
	if emitted <= 0 {
		t.Fatalf("jitterBufferEmittedCount %v then %v: no frame left the jitter buffer", a.JitterBufferEmittedCount, b.JitterBufferEmittedCount)
	}
	jb := 1000 * (b.JitterBufferDelay - a.JitterBufferDelay) / emitted
	var overall float64
	if b.JitterBufferEmittedCount > 0 {
		overall = 1000 * b.JitterBufferDelay / b.JitterBufferEmittedCount
	}
	t.Logf("FIGURE jitter_buffer_ms=%.0f", jb)
	t.Logf("FIGURE join_freezes=%.0f join_frozen_ms=%.0f", b.FreezeCount, 1000*b.TotalFreezesDuration)
	t.Logf("jitter buffer: %.1f ms per frame over %.0f frames in the window, %.1f ms since the start (%.0f frames), target %.0f ms",
		jb, emitted, overall, b.JitterBufferEmittedCount, 1000*b.JitterBufferTargetDelay/max(b.JitterBufferEmittedCount, 1))
	if aa, ab := samples[0].stats.Audio, samples[len(samples)-1].stats.Audio; aa != nil && ab != nil && ab.JitterBufferEmittedCount > aa.JitterBufferEmittedCount {
		t.Logf("audio jitter buffer: %.1f ms per sample over the window",
			1000*(ab.JitterBufferDelay-aa.JitterBufferDelay)/(ab.JitterBufferEmittedCount-aa.JitterBufferEmittedCount))
	}
	if jb >= float64(e2eMaxJitterBuffer/time.Millisecond) {
		t.Errorf("video jitter buffer %.0f ms per frame in the steady state, want < %v", jb, e2eMaxJitterBuffer)
	}

	// The whole join: no loss, no freeze, from the first frame on.
	e2eWaitUntil(t, ctx, firstSeen.Add(e2eJoinClean))
	end := e2eRefreshStats(t, page).Video
	if end == nil {
		t.Fatal("no inbound video at the end")
	}
	t.Logf("FIGURE join_packets_lost=%.0f join_freezes_10s=%.0f", end.PacketsLost, end.FreezeCount)
	if end.PacketsLost != 0 || end.FreezeCount != 0 {
		t.Errorf("%v after the first frame: packetsLost %.0f, freezeCount %.0f (%.3f s), want 0 and 0",
			e2eJoinClean, end.PacketsLost, end.FreezeCount, end.TotalFreezesDuration)
	}
}

// e2eMs formats a duration in ms.
func e2eMs(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond).String()
}

// e2eMsSince formats the time from ref to at (both performance.now() marks).
func e2eMsSince(at, ref float64) string { return e2eMs(at - ref) }
