package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/logtest"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// firstKeyframeOf returns the index of the source frame whose NAL units are
// those of au, a keyframe; -1 when there is none.
func firstKeyframeOf(t testing.TB, srcV []tsframes.Frame, au rxAU) int {
	t.Helper()
	for i := range srcV {
		if srcV[i].Key && sameNALs(nalsOf(t, srcV[i].Data), au.nals) == nil {
			return i
		}
	}
	return -1
}

// TestTimeShiftPlaysEndedStreamInRealTime: a viewer that joins an ended
// stream 1.2 s (of store time) after its start gets every video frame from
// the keyframe at or before that time to the end once, in order, with
// continuous RTP, at the pace the frames were stored, and then ends with
// ErrStreamEnded.
func TestTimeShiftPlaysEndedStreamInRealTime(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts") // 6 s, one keyframe a second
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "dvr", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("dvr", 1, events)
	began := time.Now()
	waitDone(t, feed{events: events, speed: 2}.start(t, pub)) // stored over 3 s
	// The stream ends: its publisher waits until JetStream has stored every
	// message (Publish does not), then marks it ended in the catalog.
	if err := pub.Shutdown(waitCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	joined := time.Now()
	v, err := r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true}, began.Add(1200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if pos := v.Position(); pos.Live {
		t.Fatalf("position %+v, want not live", pos)
	}
	p := connectPeer(t, v, ann)
	v.Start()
	select {
	case <-v.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the time-shifted viewer did not end at the end of the log")
	}
	if !errors.Is(v.Err(), ErrStreamEnded) {
		t.Fatalf("viewer ended with %v, want ErrStreamEnded", v.Err())
	}
	// It ended only once it had written every frame it read (the peer may
	// receive the last ones a little later).
	st := v.Stats()

	srcV, srcA := framesOf(events)
	video := p.video.waitFor(t, 10*time.Second, "the last frame", func(s []sent) bool {
		n := len(s)
		return n > 0 && s[n-1].hdr.Marker && bytes.HasSuffix(srcV[len(srcV)-1].Data, s[n-1].payload[len(s[n-1].payload)-8:])
	})
	aus := depacketizeH264(t, video)
	k := firstKeyframeOf(t, srcV, aus[0])
	if k <= 0 || k >= len(srcV)/2+30 {
		t.Fatalf("started at source frame %d, want the keyframe at or before 1.2 s of 3 s (frame 60)", k)
	}
	if len(aus) != len(srcV)-k {
		t.Fatalf("%d access units from keyframe %d, want %d", len(aus), k, len(srcV)-k)
	}
	if st.Video.Frames != uint64(len(aus)) || st.Video.Drops != 0 || st.Audio.Drops != 0 {
		t.Fatalf("stats at the end: video %+v, audio %+v: want %d video frames written, no drops", st.Video, st.Audio, len(aus))
	}
	for i := range aus {
		if err := sameNALs(nalsOf(t, srcV[k+i].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
	}
	if c := checkRTP(video, true, 90000); !c.Clean() {
		t.Fatalf("video RTP: %s", c)
	}
	audio := p.audio.waitFor(t, 10*time.Second, "the audio packets written", func(s []sent) bool { return uint64(len(s)) >= st.Audio.Frames })
	if st.Audio.Frames != uint64(len(audio)) {
		t.Fatalf("%d audio packets received, %d written before the end", len(audio), st.Audio.Frames)
	}
	if c := checkRTP(audio, false, 48000); !c.Clean() || len(audio) == 0 {
		t.Fatalf("audio RTP: %s", c)
	}
	// The audio packets stored from the keyframe on, every one once (the
	// first ones may come before the viewer started).
	if len(audio) > len(srcA) || len(audio) < len(srcA)*(len(srcV)-k)/len(srcV)-10 {
		t.Fatalf("%d audio packets, want about %d", len(audio), len(srcA)*(len(srcV)-k)/len(srcV))
	}

	// Paced by the store times: the frames from the keyframe on were stored
	// over their media time / 2.
	want := time.Duration(float64(srcV[len(srcV)-1].PTS-srcV[k].PTS) / 90000 / 2 * float64(time.Second))
	got := video[len(video)-1].at.Sub(joined)
	t.Logf("played %d frames from frame %d in %s (stored over %s); position %+v", len(aus), k, got, want, v.Position())
	if got < want*85/100 || got > want*115/100+300*time.Millisecond {
		t.Fatalf("played in %s, want %s ±15%%", got, want)
	}
	if pos := v.Position(); pos.Stored.Before(began) || pos.PTS <= 0 {
		t.Fatalf("position %+v after the end", pos)
	}
}

// TestTimeShiftOutOfRange: JoinAt before the stream's first keyframe plays
// from it; after its last message it is a *bus.RangeError; an unknown
// stream is bus.ErrNotFound.
func TestTimeShiftOutOfRange(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "short", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("short", 1, events)
	waitDone(t, feed{events: events[:len(events)/4]}.start(t, pub))
	// Publishing is asynchronous: wait until JetStream stores a keyframe
	// (the window's start) before asking for what lies outside it.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a keyframe stored", func() bool {
		_, err := bus.OldestKeyframe(waitCtx(t, time.Second), js, "short")
		return err == nil
	})

	_, err = r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true}, time.Now().Add(time.Hour))
	var re *bus.RangeError
	if !errors.As(err, &re) || !errors.Is(err, bus.ErrOutOfRange) || re.First.IsZero() {
		t.Fatalf("join an hour ahead: %v, want a *bus.RangeError with the window", err)
	}
	missing := ann
	missing.Stream = "missing"
	if _, err := r.JoinAt(waitCtx(t, 10*time.Second), missing, Want{Video: true}, time.Now().Add(-time.Second)); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("join an unknown stream: %v, want bus.ErrNotFound", err)
	}
	v, err := r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatalf("join an hour back: %v, want the first keyframe", err)
	}
	v.Close()
	if st := r.Stats(); st.Viewers != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats after close %+v", st)
	}
}

// loopEvents is events n times over, their PTS continuing (audio
// packets that would overlap the previous loop's last one left out).
func loopEvents(events []event, n int) []event {
	srcV, _ := framesOf(events)
	span := srcV[len(srcV)-1].PTS - srcV[0].PTS + 3000 // 30 fps
	var loop []event
	var audioEnd int64
	for i := range n {
		for _, e := range events {
			if e.ann != nil {
				if i == 0 {
					loop = append(loop, e)
				}
				continue
			}
			f := *e.frame
			f.PTS += int64(i) * span
			f.DTS += int64(i) * span
			if f.Kind == tsframes.KindAudio {
				if f.PTS < audioEnd {
					continue // overlaps the previous loop's last packet
				}
				audioEnd = f.PTS + f.Duration
			}
			loop = append(loop, event{frame: &f})
		}
	}
	return loop
}

// TestTimeShiftSurvivesReconnect: a time-shifted viewer that follows a
// stream 4 s behind keeps its place when the connection reconnects (the
// bus subscription then resumes at the latest keyframe; the reader goes
// back to the log from the last message it played): it gets every video
// frame from its keyframe to the end once, in order, with clean RTP.
func TestTimeShiftSurvivesReconnect(t *testing.T) {
	checkLeaks(t)
	// Four loops of the fixture (24 s, fed in 12 s): the stream still grows,
	// seconds ahead of the viewer, at the second reconnect, even on a
	// loaded machine.
	loop := loopEvents(readFixture(t, "av.ts"), 4)
	// The publisher has its own connection (the broker's, in production):
	// the reconnects below are the relay's only, and every frame is stored.
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	pub := newPublisher(t, natstest.Connect(t, srv), "resume", 1)
	cat := newFakeCatalog()
	cat.set(bus.CatalogEntry{Stream: "resume", State: bus.StateLive})
	logs := logtest.NewWatch()
	r := newBusRelay(t, Config{Conn: nc, Logger: slog.New(logs)})
	r.subscribeAt = func(ctx context.Context, name string, at time.Time, handler func(bus.Message)) (subscription, error) {
		return subscribeLog(ctx, logConfig{conn: nc, catalog: cat, logger: r.log, endIdle: time.Second}, name, at, handler)
	}
	ann := busAnnouncement("resume", 1, loop)
	done := feed{events: loop, speed: 2, mark: 240}.startMarked(t, pub) // 4 s in
	v, err := r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true}, time.Now().Add(-4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeer(t, v, ann)
	v.Start()
	// While it reads its range.
	p.video.waitFor(t, 10*time.Second, "1 s of video", func(s []sent) bool { return countMarkers(s) > 60 })
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	// Once it follows the stream (its range ends 4 s after the join), its
	// subscription is seconds behind the stream's newest message.
	logs.Wait(t, waitCtx(t, 15*time.Second), "time-shifted log reader follows the stream")
	n := countMarkers(p.video.snapshot())
	p.video.waitFor(t, 10*time.Second, "video from the subscription", func(s []sent) bool { return countMarkers(s) > n+60 })
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	logs.Wait(t, waitCtx(t, 10*time.Second), "time-shifted reader resumes from the log")
	waitDone(t, done)
	// The loops look alike: the first keyframe sent is in the first one
	// (the viewer joined 4 s back, 4 s in), and the viewer gets every frame
	// from there.
	srcV, _ := framesOf(loop)
	k := firstKeyframeOf(t, srcV, depacketizeH264(t, p.video.snapshot())[0])
	if k < 0 {
		t.Fatal("the first access unit is not a keyframe of the stream")
	}
	// The viewer plays in real time, 4 s behind: up to 16 s after the feed.
	video := p.video.waitFor(t, 25*time.Second, "every frame", func(s []sent) bool { return countMarkers(s) >= len(srcV)-k })
	aus := depacketizeH264(t, video)
	if len(aus) != len(srcV)-k {
		t.Fatalf("%d access units from source frame %d, want %d", len(aus), k, len(srcV)-k)
	}
	for i := range aus {
		if err := sameNALs(nalsOf(t, srcV[k+i].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
	}
	if c := checkRTP(video, true, 90000); !c.Clean() {
		t.Fatalf("video RTP: %s", c)
	}
	if pos := v.Position(); pos.Live || time.Since(pos.Stored) < time.Second {
		t.Fatalf("position %+v: not 2 s behind any more", pos)
	}
}

// seekStart returns the index of the first video packet of a seek asked for
// when mark packets had arrived: the first one, from mark on, of an access
// unit that is not the source frame after the one before it (the stream
// loops the frames of period); -1 when every one is.
func seekStart(t testing.TB, period []tsframes.Frame, video []sent, mark int) int {
	t.Helper()
	src := make([][][]byte, len(period))
	for i := range period {
		src[i] = nalsOf(t, period[i].Data)
	}
	aus := depacketizeH264(t, video)
	prev := -1 // the last access unit that starts before mark
	for i := range aus {
		if aus[i].at < mark {
			prev = i
		}
	}
	if prev < 0 {
		t.Fatalf("no access unit before packet %d", mark)
	}
	// The source frames the previous access unit may be (frames may look
	// alike).
	var at []int
	for j := range src {
		if sameNALs(src[j], aus[prev].nals) == nil {
			at = append(at, j)
		}
	}
	if len(at) == 0 {
		t.Fatalf("access unit %d is no source frame", prev)
	}
	for _, au := range aus[prev+1:] {
		var next []int
		for _, j := range at {
			if n := (j + 1) % len(src); sameNALs(src[n], au.nals) == nil {
				next = append(next, n)
			}
		}
		if len(next) == 0 {
			return au.at
		}
		at = next
	}
	return -1
}

// TestSeekBackAndToLiveKeepsRTPContinuous: a live viewer seeks 2 s back,
// then to the live edge again; its RTP sequence numbers and timestamps
// continue without gap or step back across both seeks, its position tells
// where it plays, and video restarts at a keyframe each time.
func TestSeekBackAndToLiveKeepsRTPContinuous(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	// Three times the fixture, its PTS continuing: 18 s, fed over 9 s.
	loop := loopEvents(events, 3)
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "seek", 1)
	cat := newFakeCatalog()
	cat.set(bus.CatalogEntry{Stream: "seek", State: bus.StateLive})
	r := newBusRelay(t, Config{Conn: nc})
	r.subscribeAt = func(ctx context.Context, name string, at time.Time, handler func(bus.Message)) (subscription, error) {
		return subscribeLog(ctx, logConfig{conn: nc, catalog: cat, logger: r.log, endIdle: time.Second}, name, at, handler)
	}
	ann := busAnnouncement("seek", 1, loop)
	done := feed{events: loop, speed: 2, mark: 150}.startMarked(t, pub) // 2.5 s in
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeer(t, v, ann)
	v.Start()
	p.video.waitFor(t, 10*time.Second, "live video", func(s []sent) bool { return countMarkers(s) > 40 })
	if pos := v.Position(); !pos.Live || time.Since(pos.Stored) > time.Second {
		t.Fatalf("live position %+v", pos)
	}

	// Packets written before a seek takes effect may still arrive after
	// the mark: the seek starts at the first access unit that does not
	// continue the frames before it.
	srcV, _ := framesOf(events)
	mark := len(p.video.snapshot())
	if err := v.Seek(waitCtx(t, 10*time.Second), time.Now().Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	back := p.video.waitFor(t, 10*time.Second, "video after the seek back", func(s []sent) bool { return countMarkers(s[mark:]) > 40 })
	if mark = seekStart(t, srcV, back, mark); mark < 0 || !isKeyframeStart(back[mark].payload) {
		t.Fatal("the seek back does not start at a keyframe")
	}
	pos := v.Position()
	if lag := time.Since(pos.Stored); pos.Live || lag < 1500*time.Millisecond || lag > 4*time.Second {
		t.Fatalf("position %+v after a seek 2 s back (lag %s)", pos, lag)
	}

	mark = len(back)
	if err := v.Seek(waitCtx(t, 10*time.Second), time.Time{}); err != nil {
		t.Fatal(err)
	}
	live := p.video.waitFor(t, 10*time.Second, "video after the seek to live", func(s []sent) bool { return countMarkers(s[mark:]) > 20 })
	if mark = seekStart(t, srcV, live, mark); mark < 0 || !isKeyframeStart(live[mark].payload) {
		t.Fatal("the seek to live does not start at a keyframe")
	}
	waitDone(t, done)
	last := loop[len(loop)-1]
	for i := len(loop) - 1; last.frame == nil || last.frame.Kind != tsframes.KindVideo; i-- {
		last = loop[i]
	}
	p.video.waitFor(t, 10*time.Second, "the last frame", func(s []sent) bool {
		n := len(s)
		return s[n-1].hdr.Marker && bytes.HasSuffix(last.frame.Data, s[n-1].payload[len(s[n-1].payload)-8:])
	})
	if pos := v.Position(); !pos.Live {
		t.Fatalf("position %+v after a seek to live", pos)
	}

	video, audio := p.video.snapshot(), p.audio.snapshot()
	if c := checkRTP(video, true, 90000); !c.Clean() {
		t.Fatalf("video RTP: %s", c)
	}
	if c := checkRTP(audio, false, 48000); !c.Clean() {
		for i := 1; i < len(audio); i++ {
			if d := audio[i].hdr.Timestamp - audio[i-1].hdr.Timestamp; d == 0 || d > 48000 {
				t.Logf("audio step %d at %d (seq %d, %s after the previous)", int32(d), i, audio[i].hdr.SequenceNumber, audio[i].at.Sub(audio[i-1].at))
			}
		}
		t.Fatalf("audio RTP: %s", c)
	}
	depacketizeH264(t, video) // complete access units
	if st := r.Stats(); st.Viewers != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats %+v, want the live hub's subscription only", st)
	}
}

// TestTrackWriterResync: after a resync (a seek) the frames of another hub,
// whose stream sequence numbers and timestamps start anywhere (here lower),
// continue the viewer's sequence numbers, and its timestamps advance by
// the time the seek took plus one step; what was sent before no longer
// maps to a stream sequence number (it cannot be retransmitted from the
// new hub's buffer).
func TestTrackWriterResync(t *testing.T) {
	rec := newRecorder()
	buf := newRetransmitBuffer(64)
	w := newTestWriter(t, rec, buf)
	for _, f := range []*frame{frameAt(100, 900000, true, 0, 2), frameAt(102, 903000, false, 1, 2)} {
		buf.put(f)
		w.write(f)
	}
	before := rec.snapshot()
	buf2 := newRetransmitBuffer(64)
	began := time.Now().Add(-50 * time.Millisecond)
	w.resync(buf2)
	w.pausedAt = began // the seek took 50 ms
	after := []*frame{frameAt(7, 1000, true, 0, 3), frameAt(10, 4000, false, 1, 1)}
	for _, f := range after {
		buf2.put(f)
		w.write(f)
	}
	took := time.Since(began)
	pkts := rec.snapshot()
	for i := 1; i < len(pkts); i++ {
		if pkts[i].hdr.SequenceNumber != pkts[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, pkts[i].hdr.SequenceNumber, pkts[i-1].hdr.SequenceNumber)
		}
	}
	last, first := before[len(before)-1].hdr.Timestamp, pkts[len(before)].hdr.Timestamp
	step := time.Duration(first-last) * time.Second / videoClockRate
	if step < 50*time.Millisecond+time.Duration(rebaseStep*float64(time.Second)) || step > took+time.Duration(rebaseStep*float64(time.Second)) {
		t.Fatalf("timestamp step across the resync %s, want the resync's %s + %gs", step, took, rebaseStep)
	}
	if d := pkts[len(pkts)-1].hdr.Timestamp - first; d != 3000 {
		t.Fatalf("timestamps after the resync advance %d, want the new hub's 3000", d)
	}
	if _, ok := w.streamSeq(before[0].hdr.SequenceNumber); ok {
		t.Fatal("a packet sent before the resync maps to the new hub's stream")
	}
	if s, ok := w.streamSeq(pkts[len(before)].hdr.SequenceNumber); !ok || s != 7 {
		t.Fatalf("first packet after the resync maps to %d (%v), want 7", s, ok)
	}
}

// TestSeekRacesClose: seeks from several goroutines, to the past and to
// live, racing with Close, neither deadlock nor leak: once all returned,
// the relay holds no viewer and no subscription.
func TestSeekRacesClose(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "race", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("race", 1, events)
	done := feed{events: events, speed: 2, mark: 60}.startMarked(t, pub)
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	v.Start()
	errs := make(chan error, 3)
	for g := range 3 {
		go func() {
			var err error
			for i := range 4 {
				at := time.Time{}
				if (i+g)%2 == 0 {
					at = time.Now().Add(-time.Second)
				}
				if err = v.Seek(waitCtx(t, 10*time.Second), at); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	v.Close()
	for range 3 {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("seek: %v, want nil or ErrClosed", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a seek did not return")
		}
	}
	waitDone(t, done)
	eventually(t, 10*time.Second, "no viewer and no subscription left", func() bool {
		st := r.Stats()
		return st.Viewers == 0 && st.Subscriptions == 0
	})
}

// joinShiftedFake joins a time-shifted viewer of the fake bus's stream of
// ann (its log reader is the fake subscription) with both kinds bound to
// one recorder whose writes wait for gate.
func joinShiftedFake(t *testing.T, r *Relay, b *fakeBus, ann bus.Announcement, gate chan struct{}) (*Viewer, *recorder) {
	t.Helper()
	r.subscribeAt = func(ctx context.Context, name string, _ time.Time, handler func(bus.Message)) (subscription, error) {
		return b.subscribe(ctx, name, handler)
	}
	v, err := r.JoinAt(waitCtx(t, 5*time.Second), ann, Want{Video: true, Audio: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	rec := newRecorder()
	rec.gate = gate
	bind(t, v.VideoTrack(), ssrcVideo, rec)
	bind(t, v.AudioTrack(), ssrcAudio, rec)
	return v, rec
}

// waitDrained waits until the log of v's hub has ended (the hub told its
// viewers to write their queues).
func waitDrained(t *testing.T, v *Viewer) {
	t.Helper()
	select {
	case <-v.hub.drained:
	case <-time.After(5 * time.Second):
		t.Fatal("the hub did not see the end of the log")
	}
}

// TestTimeShiftEndWritesQueue: at the end of the log of an ended stream, a
// time-shifted viewer whose writer is behind (blocked in a write, every
// other frame in its queue) stays open until it has written every frame
// it was given, and then ends with ErrStreamEnded: all of them, in order,
// are written before Done is closed.
func TestTimeShiftEndWritesQueue(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s", 1, events)
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	v, rec := joinShiftedFake(t, r, b, firstAnnouncement(t, msgs), gate)
	t.Cleanup(open) // before v.Close
	v.Start()
	b.send("s", msgs...)
	b.fail("s", fmt.Errorf("relay: stream %q: %w: end of its log", "s", ErrStreamEnded))
	waitDrained(t, v)
	select {
	case <-v.Done():
		t.Fatalf("the viewer ended (%v) with its frames still queued", v.Err())
	default:
	}
	open()
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer did not end once its queue was written")
	}
	if !errors.Is(v.Err(), ErrStreamEnded) {
		t.Fatalf("viewer ended with %v, want ErrStreamEnded", v.Err())
	}
	// Every write returned before Done was closed.
	srcV, srcA := framesOf(events)
	sv, sa := splitKinds(rec.snapshot())
	checkVideo(t, srcV, depacketizeH264(t, sv))
	checkAudio(t, srcA, sa)
	if st := v.Stats(); st.Video.Frames != uint64(len(srcV)) || st.Audio.Frames != uint64(len(srcA)) ||
		st.Video.Drops != 0 || st.Audio.Drops != 0 {
		t.Fatalf("stats %+v, %+v: want %d video and %d audio frames, no drops", st.Video, st.Audio, len(srcV), len(srcA))
	}
}

// TestTimeShiftEndBounded: a time-shifted viewer that cannot write its
// queue at the end of the log (its peer stuck) still ends, with
// ErrStreamEnded, once the hub's drain deadline has passed.
func TestTimeShiftEndBounded(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s", 1, events)
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	r.endDrain = 200 * time.Millisecond
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	v, _ := joinShiftedFake(t, r, b, firstAnnouncement(t, msgs), gate)
	t.Cleanup(open) // the stuck write returns before v.Close waits for it
	v.Start()
	b.send("s", msgs...)
	b.fail("s", fmt.Errorf("relay: stream %q: %w: end of its log", "s", ErrStreamEnded))
	waitDrained(t, v)
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck viewer did not end after the drain deadline")
	}
	if !errors.Is(v.Err(), ErrStreamEnded) {
		t.Fatalf("viewer ended with %v, want ErrStreamEnded", v.Err())
	}
	if st := v.Stats(); st.Video.Frames != 0 {
		t.Fatalf("%d video frames written through a stuck write", st.Video.Frames)
	}
}
