package relay

import (
	"slices"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// smoothInput is a frame reaching the hub at ms (and stored then).
type smoothInput struct {
	video bool
	media int64 // 90 kHz
	ms    int
}

// smoothOutput is a frame delivered at ms.
type smoothOutput struct {
	in smoothInput
	ms int
}

// simulateSmoother pushes in and ticks the smoother each millisecond (as
// its goroutine would), returning what was delivered and when.
func simulateSmoother(in []smoothInput) []smoothOutput {
	var out []smoothOutput
	now := 0
	byFrame := map[*frame]smoothInput{}
	s := newSmoother(func(f *frame) { out = append(out, smoothOutput{byFrame[f], now}) })
	s.expectVideo = slices.ContainsFunc(in, func(x smoothInput) bool { return x.video })
	base := time.Unix(1000, 0).UnixNano()
	i := 0
	end := in[len(in)-1].ms + 2000
	for now = 0; now <= end; now++ {
		for ; i < len(in) && in[i].ms == now; i++ {
			f := &frame{video: in[i].video}
			byFrame[f] = in[i]
			recv := time.Duration(now) * time.Millisecond
			s.push(f, in[i].media, base+int64(recv), recv, base+int64(recv))
		}
		s.mu.Lock()
		s.releaseLocked(time.Duration(now) * time.Millisecond)
		s.mu.Unlock()
	}
	return out
}

// checkOrder fails unless out holds every frame of in, each kind in order.
func checkOrder(t *testing.T, in []smoothInput, out []smoothOutput) {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("%d frames delivered, want %d", len(out), len(in))
	}
	for _, video := range []bool{true, false} {
		var want, got []int64
		for _, x := range in {
			if x.video == video {
				want = append(want, x.media)
			}
		}
		for _, x := range out {
			if x.in.video == video {
				got = append(got, x.in.media)
			}
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("video=%v: frame %d is media %d, want %d", video, i, got[i], want[i])
			}
		}
	}
}

// TestSmootherEvensOutBursts: 30 fps video and 20 ms audio that arrive in
// 350 ms bursts (as after the ingest's interleaving of an AAC source) leave
// evenly, audio and video of the same media time together: once the stream
// has been seen for smoothSettle, each frame's delivery minus its media time
// is the same for all.
func TestSmootherEvensOutBursts(t *testing.T) {
	var in []smoothInput
	for ms := 0; ms < 6000; ms++ {
		if ms%350 == 0 && ms > 0 { // the burst of [ms-350, ms)
			var burst []smoothInput
			for a := ms - 350; a < ms; a++ {
				if a%20 == 0 {
					burst = append(burst, smoothInput{false, int64(a) * 90, ms})
				}
			}
			for v := ms - 350; v < ms; v++ {
				if v*30%1000 < 30 {
					burst = append(burst, smoothInput{true, int64(v) * 90, ms})
				}
			}
			in = append(in, burst...)
		}
	}
	out := simulateSmoother(in)
	checkOrder(t, in, out)
	lo, hi := 1<<30, -1<<30
	for _, o := range out {
		if o.in.ms < 350+1000+350 {
			continue // until smoothSettle has passed (the first burst, then a second)
		}
		d := o.ms - int(o.in.media/90)
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo > 1 {
		t.Fatalf("delivery minus media time spreads over %d..%d ms, want one value", lo, hi)
	}
	if lo < 345 || hi > 355 {
		t.Fatalf("delivered %d ms after the media time, want the bursts' 350", lo)
	}
}

// TestSmootherStartsAudioWithVideo: an MPEG-TS source with AAC starting.
// Its audio comes first, in PES of 350 ms that arrive once complete; its
// first video burst comes 250 ms after the audio of the same time (the
// ingest holds the video until the audio that covers it has come), later
// ones with that audio. Every frame leaves at its media time plus one
// delay, the first audio frame too: the audio waits for the first video
// frame instead of leaving at once and stalling when the video raised the
// delay (a gap a browser's audio jitter buffer never forgets).
func TestSmootherStartsAudioWithVideo(t *testing.T) {
	var in []smoothInput
	for pes := 350; pes <= 5000; pes += 350 {
		for a := pes - 350; a < pes; a += 20 {
			in = append(in, smoothInput{false, int64(a) * 90, pes + 20})
		}
		at := pes + 20
		if pes == 350 {
			at += 250
		}
		for v := pes - 350; v < pes; v++ {
			if v*30%1000 < 30 {
				in = append(in, smoothInput{true, int64(v) * 90, at})
			}
		}
	}
	slices.SortStableFunc(in, func(a, b smoothInput) int { return a.ms - b.ms })
	out := simulateSmoother(in)
	checkOrder(t, in, out)
	lo, hi := 1<<30, -1<<30
	for _, o := range out {
		d := o.ms - int(o.in.media/90)
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo > 1 {
		t.Fatalf("delivery minus media time spreads over %d..%d ms from the start, want one value", lo, hi)
	}
}

// TestSmootherPassesEvenStreams: frames arriving at their media time with a
// few ms of jitter are delivered as they come.
func TestSmootherPassesEvenStreams(t *testing.T) {
	var in []smoothInput
	for ms := 0; ms < 5000; ms += 20 {
		in = append(in, smoothInput{false, int64(ms) * 90, ms + (ms/20)%7})
	}
	for _, o := range simulateSmoother(in) {
		if o.ms != o.in.ms {
			t.Fatalf("media %d arrived at %d ms, delivered at %d", o.in.media, o.in.ms, o.ms)
		}
	}
}

// TestSmootherPassesFastFeeds: 20 s of frames pushed within 20 ms (ahead of
// real time) are delivered as they come, but for the last smoothMaxDelay of
// media time, which may wait until then (a fast feed shows only once it has
// run that far ahead).
func TestSmootherPassesFastFeeds(t *testing.T) {
	var in []smoothInput
	for i := range 600 {
		in = append(in, smoothInput{true, int64(i) * 3000, i / 30})
	}
	out := simulateSmoother(in)
	checkOrder(t, in, out)
	for _, o := range out {
		if wait := o.ms - o.in.ms; (o.in.media < 600*3000-72000 && wait > 20) || wait > 820 {
			t.Fatalf("media %d arrived at %d ms, delivered at %d", o.in.media, o.in.ms, o.ms)
		}
	}
}

// TestSmootherAnchorStepsDown: one frame 500 ms late at the start, then
// bursts of 200 ms: the frames are sent 500 ms after their media time (the
// anchor rises at once) until a whole smoothWindow has shown no such
// lateness, then 200 ms after it; each kind's delay only decreases (its
// frames queued at the step go out first, the next ones right after them).
func TestSmootherAnchorStepsDown(t *testing.T) {
	in := []smoothInput{{true, 0, 500}}
	for ms := 700; ms < 25000; ms += 200 {
		for a := ms - 200; a < ms; a += 20 {
			in = append(in, smoothInput{false, int64(a) * 90, ms})
			if a%40 == 0 {
				in = append(in, smoothInput{true, int64(a) * 90, ms})
			}
		}
	}
	out := simulateSmoother(in)
	checkOrder(t, in, out)
	prev := map[bool]int{true: 500, false: 500} // by kind
	for _, o := range out[1:] {
		if o.in.ms <= 700 {
			continue // the first burst: its video's spread is being learnt
		}
		d := o.ms - int(o.in.media/90)
		switch {
		case o.in.ms < 20000 && d != 500:
			t.Fatalf("media %d ms sent %d ms after, want 500 (the anchor)", o.in.media/90, d)
		case o.in.ms > 21000 && d != 200:
			t.Fatalf("media %d ms sent %d ms after, want 200 once the anchor stepped down", o.in.media/90, d)
		case d > prev[o.in.video]:
			t.Fatalf("media %d ms sent %d ms after, more than the %d before", o.in.media/90, d, prev[o.in.video])
		}
		prev[o.in.video] = d
	}
}

// TestSmootherPassesEvenVideo: audio that comes in one-second bursts (a
// transcoder that buffers the frames of an RTMP source) beside video that
// comes on time is not evened out: the video leaves as it comes (holding it
// for the audio would only delay the picture), the audio too.
func TestSmootherPassesEvenVideo(t *testing.T) {
	var in []smoothInput
	for ms := 0; ms < 8000; ms++ {
		if ms%1000 == 0 && ms > 0 {
			for a := ms - 1000; a < ms; a += 20 {
				in = append(in, smoothInput{false, int64(a) * 90, ms})
			}
		}
		if ms*30%1000 < 30 {
			in = append(in, smoothInput{true, int64(ms) * 90, ms})
		}
	}
	out := simulateSmoother(in)
	checkOrder(t, in, out)
	for _, o := range out {
		if o.ms != o.in.ms {
			t.Fatalf("video=%v of %d ms, come at %d ms, left at %d ms", o.in.video, o.in.media/90, o.in.ms, o.ms)
		}
	}
}

// TestRepeatedAnnouncementKeepsHeldFrames: the ingest repeats a stream's
// announcement before each keyframe. A stream with derived audio whose video
// came in a burst is evened out, and the frames held stay held over the
// repeated announcement: they leave at their media time, not all at once
// (which made a gap of the whole hold before every keyframe). An
// announcement that changes the tracks releases them at once.
func TestRepeatedAnnouncementKeepsHeldFrames(t *testing.T) {
	checkLeaks(t)
	msgs := messages("s", 1, readFixture(t, "av.ts"))
	ann := firstAnnouncement(t, msgs)
	ann.Tracks = slices.Clone(ann.Tracks)
	for i := range ann.Tracks {
		if ann.Tracks[i].PID == ann.Audio {
			ann.Tracks[i].DerivedFrom = 0x1f00 // the Opus of a transcoding stage
		}
	}
	if !needsSmoothing(ann) {
		t.Fatal("a stream with derived audio is not smoothed")
	}
	var burst []bus.Message
	for _, m := range msgs {
		if m.Tracks == nil && m.Frame.Codec == tsframes.CodecH264 && (len(burst) > 0 || m.Frame.Key) && len(burst) < 21 {
			burst = append(burst, m)
		}
	}
	span := time.Duration(burst[20].Frame.PTS-burst[0].Frame.PTS) * time.Second / 90000
	r, b := newTestRelay(t, Config{}, nil)
	v, rec := join(t, r, ann)
	v.Start()
	annMsg := bus.Message{Epoch: 1, Tracks: &ann}
	b.send("s", annMsg)
	// The 21 frames were all stored just now: the first is span late
	// when the last is on time.
	at := time.Now()
	for i := range burst {
		burst[i].Published = at.Add(-5 * time.Millisecond)
	}
	b.send("s", burst...)
	b.send("s", annMsg)
	got := rec.waitFor(t, 5*time.Second, "21 video frames", func(p []sent) bool { return countMarkers(p) >= 21 })
	last := got[len(got)-1].at.Sub(at)
	t.Logf("21 frames over %v of media: the last left %v after the burst", span, last)
	if last < span-100*time.Millisecond {
		t.Fatalf("the last frame of the burst left %v after it, want about %v (its media time)", last, span)
	}

	// The tracks change (audio only): what is held goes first, at once.
	h := onlyHub(t, r)
	held := func() int {
		h.smooth.mu.Lock()
		defer h.smooth.mu.Unlock()
		return len(h.smooth.queues[0]) + len(h.smooth.queues[1])
	}
	at = time.Now()
	for i := range burst {
		burst[i].Published = at.Add(-5 * time.Millisecond)
		burst[i].Frame.PTS += int64(span/time.Millisecond*90) + 3000
	}
	b.send("s", burst...)
	if held() == 0 {
		t.Fatal("no frame of the second burst held")
	}
	audioOnly := ann
	audioOnly.Tracks = slices.DeleteFunc(slices.Clone(ann.Tracks), func(tr tsframes.Track) bool { return tr.PID == ann.Video })
	audioOnly.Video = 0
	b.send("s", bus.Message{Epoch: 1, Tracks: &audioOnly})
	if n := held(); n != 0 {
		t.Fatalf("%d frames still held after the tracks changed, want none", n)
	}
}

// TestSmootherGoroutineOnlyWhenNeeded: a hub starts the smoother's
// goroutine with the first frame the smoother takes, so a stream whose
// audio is not derived (most) has none; one with derived audio has it.
func TestSmootherGoroutineOnlyWhenNeeded(t *testing.T) {
	checkLeaks(t)
	msgs := messages("s", 1, readFixture(t, "av.ts"))
	plain := firstAnnouncement(t, msgs)
	derived := plain
	derived.Tracks = slices.Clone(plain.Tracks)
	for i := range derived.Tracks {
		if derived.Tracks[i].PID == derived.Audio {
			derived.Tracks[i].DerivedFrom = 0x1f00
		}
	}
	for _, c := range []struct {
		ann  bus.Announcement
		want bool
	}{{plain, false}, {derived, true}} {
		r, b := newTestRelay(t, Config{}, nil)
		v, _ := join(t, r, c.ann)
		v.Start()
		b.send("s", bus.Message{Epoch: 1, Tracks: &c.ann})
		for _, m := range msgs[:60] {
			if m.Tracks == nil {
				b.send("s", m)
			}
		}
		h := onlyHub(t, r)
		h.smoothMu.Lock()
		started := h.smoothStopped != nil
		h.smoothMu.Unlock()
		if started != c.want {
			t.Fatalf("derived audio %v: smoother goroutine started %v, want %v", c.want, started, c.want)
		}
		v.Close()
		r.Close()
	}
}

// onlyHub returns the one shared hub of r.
func onlyHub(t *testing.T, r *Relay) *hub {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.hubs) != 1 {
		t.Fatalf("%d hubs, want 1", len(r.hubs))
	}
	for _, h := range r.hubs {
		return h
	}
	return nil
}
