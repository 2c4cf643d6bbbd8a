package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// splitAfterVideo returns the index in msgs just after its n-th video frame.
func splitAfterVideo(msgs []bus.Message, n int) int {
	for i, m := range msgs {
		if m.Tracks == nil && m.Frame.Codec == tsframes.CodecH264 {
			n--
			if n == 0 {
				return i + 1
			}
		}
	}
	return len(msgs)
}

func framesOfMsgs(msgs []bus.Message) (video, audio []tsframes.Frame) {
	for _, m := range msgs {
		if m.Tracks != nil {
			continue
		}
		switch m.Frame.Codec {
		case tsframes.CodecH264:
			video = append(video, m.Frame)
		case tsframes.CodecOpus:
			audio = append(audio, m.Frame)
		}
	}
	return video, audio
}

func nalTypes(nals [][]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, n[0]&0x1f)
	}
	return out
}

func TestLateJoinerGetsGOPThenLive(t *testing.T) {
	checkLeaks(t)
	msgs := messages("g", 1, readFixture(t, "gop4.ts"))
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	// An early viewer keeps the hub, and so the GOP cache, alive.
	early, _ := join(t, r, firstAnnouncement(t, msgs))
	early.Start()
	cut := splitAfterVideo(msgs, 50) // mid-GOP: 4 s GOP, 50 frames in
	b.send("g", msgs[:cut]...)

	v, rec := join(t, r, firstAnnouncement(t, msgs))
	v.Start()
	b.send("g", msgs[cut:]...)

	srcV, _ := framesOfMsgs(msgs)
	_, liveA := framesOfMsgs(msgs[cut:])
	pkts := waitFrames(t, rec, len(srcV), len(liveA))
	video, audio := splitKinds(pkts)
	aus := depacketizeH264(t, video) // fails on any sequence gap
	if got := nalTypes(aus[0].nals); len(got) < 3 || got[0] != 7 || got[1] != 8 || got[len(got)-1] != 5 {
		t.Fatalf("first access unit has NAL types %v, want SPS, PPS, ..., IDR", got)
	}
	// Every frame from the keyframe on, exactly once, in order.
	if err := sameNALs(nalsOf(t, srcV[0].Data), aus[0].nals); err != nil {
		t.Fatal(err)
	}
	if len(aus) != len(srcV) {
		t.Fatalf("%d access units, want %d", len(aus), len(srcV))
	}
	for i := range srcV {
		if err := sameNALs(nalsOf(t, srcV[i].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
	}
	// The replay (frames 0..49) and the live frames that arrive while it is
	// paced (here all of them: the fake bus delivers them at once) advance
	// by their media time divided by the replay rate: a fast-forward that
	// takes as long to send as it takes to play.
	st := v.Stats()
	if st.Replayed != 50 {
		t.Fatalf("replayed %d frames, want 50", st.Replayed)
	}
	for i := range aus {
		want := uint32(int64(float64(srcV[i].PTS-srcV[0].PTS) / DefaultReplayRate))
		if d := aus[i].ts - aus[0].ts; d != want {
			t.Fatalf("frame %d: %d ticks after the keyframe, want %d", i, d, want)
		}
	}
	// Audio starts at the live edge.
	checkAudio(t, liveA, audio)
	if st.TimeToFirstFrame <= 0 {
		t.Fatalf("time to first frame %s", st.TimeToFirstFrame)
	}
	t.Logf("time from Start to the first keyframe written (fake WriteStream): %s", st.TimeToFirstFrame)
}

func TestStartLiveWaitsForKeyframe(t *testing.T) {
	checkLeaks(t)
	msgs := messages("g", 1, readFixture(t, "av.ts"))
	r, b := newTestRelay(t, Config{ViewerQueue: 1024, Start: StartLive}, nil)
	early, _ := join(t, r, firstAnnouncement(t, msgs))
	early.Start()
	cut := splitAfterVideo(msgs, 10)
	b.send("g", msgs[:cut]...)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	v.Start()
	b.send("g", msgs[cut:]...)
	srcV, _ := framesOfMsgs(msgs)
	pkts := waitFrames(t, rec, len(srcV)-30, 1)
	video, _ := splitKinds(pkts)
	aus := depacketizeH264(t, video)
	if len(aus) != len(srcV)-30 || !srcV[30].Key {
		t.Fatalf("%d access units, want the %d from the second keyframe", len(aus), len(srcV)-30)
	}
	if err := sameNALs(nalsOf(t, srcV[30].Data), aus[0].nals); err != nil {
		t.Fatalf("first access unit is not the next keyframe: %v", err)
	}
	if st := v.Stats(); st.Replayed != 0 || st.Video.Drops != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlowViewerDropsToNextKeyframe(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s", 1, events)
	r, b := newTestRelay(t, Config{ViewerQueue: 8}, nil)
	ann := firstAnnouncement(t, msgs)
	fast, fastRec := join(t, r, ann)
	slow, slowRec := join(t, r, ann)
	gate := make(chan struct{})
	slowRec.gate = gate
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate) // before the viewers' Close, should the test fail
	fast.Start()
	slow.Start()
	// Pace the feed by the fast viewer: it never falls behind, the slow
	// one blocks in its first write.
	sentV, sentA := 0, 0
	for i, m := range msgs {
		if i == len(msgs)/3 {
			openGate() // the slow viewer catches up
		}
		b.send("s", m)
		if m.Tracks != nil {
			continue
		}
		if m.Frame.Codec == tsframes.CodecH264 {
			sentV++
		} else {
			sentA++
		}
		if m.Frame.More {
			continue // the rest of its audio group comes with the next messages
		}
		waitFrames(t, fastRec, sentV, sentA)
	}
	srcV, srcA := framesOf(events)
	fastPkts := fastRec.snapshot()
	fv, fa := splitKinds(fastPkts)
	checkVideo(t, srcV, depacketizeH264(t, fv))
	checkAudio(t, srcA, fa)
	if st := fast.Stats(); st.Video.Drops != 0 || st.Audio.Drops != 0 {
		t.Fatalf("fast viewer dropped: %+v", st)
	}

	// The slow viewer: its first frame, the 8 queued, then nothing until a
	// keyframe after the gate opened, then everything.
	st := slow.Stats()
	if st.Video.Drops == 0 || st.Audio.Drops == 0 {
		t.Fatalf("slow viewer counted no drops: %+v", st)
	}
	pkts := slowRec.waitFor(t, 10*time.Second, "the slow viewer's last frame", func(p []sent) bool {
		v, a := countFrames(p)
		st = slow.Stats()
		return v+a+int(st.Video.Drops+st.Audio.Drops) >= len(srcV)+len(srcA)
	})
	sv, _ := splitKinds(pkts)
	aus := depacketizeH264(t, sv) // sequence numbers stay contiguous
	next := 0
	gaps := 0
	for i, au := range aus {
		at := next
		for at < len(srcV) && sameNALs(nalsOf(t, srcV[at].Data), au.nals) != nil {
			at++
		}
		if at == len(srcV) {
			t.Fatalf("access unit %d is not a source frame in order", i)
		}
		if at != next {
			gaps++
			if !srcV[at].Key {
				t.Fatalf("access unit %d: frame %d after a gap is not a keyframe", i, at)
			}
		}
		next = at + 1
	}
	if gaps == 0 {
		t.Fatal("no gap in the slow viewer's video")
	}
	if got := int(st.Video.Frames); got != len(aus) || got+int(st.Video.Drops) != len(srcV) {
		t.Fatalf("slow viewer: %d frames sent + %d dropped, want %d", got, st.Video.Drops, len(srcV))
	}
}

func TestEpochChangeKeepsViewerContinuous(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	m1 := messages("e", 1, events)
	m2 := messages("e", 2, events) // PTS restart from the same values
	r, b := newTestRelay(t, Config{ViewerQueue: 2048}, nil)
	v, rec := join(t, r, firstAnnouncement(t, m1))
	v.Start()
	b.send("e", m1...)
	b.send("e", m2...)
	srcV, srcA := framesOf(events)
	pkts := waitFrames(t, rec, 2*len(srcV), len(srcA)+1)
	select {
	case <-v.Done():
		t.Fatalf("viewer ended: %v", v.Err())
	default:
	}
	video, audio := splitKinds(pkts)
	aus := depacketizeH264(t, video) // no sequence gap
	if len(aus) != 2*len(srcV) {
		t.Fatalf("%d access units, want %d", len(aus), 2*len(srcV))
	}
	for i := range aus {
		src := srcV[i%len(srcV)]
		if err := sameNALs(nalsOf(t, src.Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if i > 0 && aus[i].ts-aus[i-1].ts != 3000 {
			t.Fatalf("access unit %d: ts delta %d, want 3000 (one frame)", i, aus[i].ts-aus[i-1].ts)
		}
	}
	for i := 1; i < len(audio); i++ {
		if audio[i].hdr.SequenceNumber != audio[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("audio packet %d: sequence gap", i)
		}
		if d := audio[i].hdr.Timestamp - audio[i-1].hdr.Timestamp; d < 960 || d > 48000 {
			t.Fatalf("audio packet %d: ts delta %d", i, d)
		}
	}
}

func TestTracksChangedEndsViewer(t *testing.T) {
	checkLeaks(t)
	av := messages("c", 1, readFixture(t, "av.ts"))
	vid := messages("c", 2, readFixture(t, "video.ts"))
	r, b := newTestRelay(t, Config{}, nil)
	v, _ := join(t, r, firstAnnouncement(t, av))
	v.Start()
	notStarted, _ := join(t, r, firstAnnouncement(t, av))
	b.send("c", av[:50]...)
	b.send("c", vid[:1]...) // the new epoch's announcement: video only
	for _, x := range []*Viewer{v, notStarted} {
		select {
		case <-x.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("viewer not ended")
		}
		if !errors.Is(x.Err(), ErrTracksChanged) {
			t.Fatalf("Err %v, want ErrTracksChanged", x.Err())
		}
	}
	// A viewer with the old announcement is refused at Start; one with the
	// new one plays.
	stale, _ := join(t, r, firstAnnouncement(t, av))
	stale.Start()
	if !errors.Is(stale.Err(), ErrTracksChanged) {
		t.Fatalf("stale viewer: %v", stale.Err())
	}
	fresh, rec := join(t, r, firstAnnouncement(t, vid))
	if fresh.AudioTrack() != nil {
		t.Fatal("audio track for a video-only stream")
	}
	fresh.Start()
	b.send("c", vid[1:]...)
	srcV, _ := framesOfMsgs(vid)
	pkts := waitFrames(t, rec, len(srcV), 0)
	video, _ := splitKinds(pkts)
	checkVideo(t, srcV, depacketizeH264(t, video))
}

// TestConstrainedBaselineKeepsViewers: a stream announced as H.264 High
// whose announcement turns to constrained baseline (a transcoding stage's
// rendition, once its SPS is known) keeps the viewer that negotiated
// High, which gets every video frame without a break; a viewer of the new
// announcement plays too.
func TestConstrainedBaselineKeepsViewers(t *testing.T) {
	checkLeaks(t)
	msgs := messages("p", 1, readFixture(t, "av.ts"))
	withProfile := func(plid string) bus.Message {
		a := firstAnnouncement(t, msgs)
		a.Tracks = slices.Clone(a.Tracks)
		for i := range a.Tracks {
			if a.Tracks[i].Codec == tsframes.CodecH264 {
				a.Tracks[i].ProfileLevelID = plid
			}
		}
		return bus.Message{Epoch: 1, Tracks: &a}
	}
	high, cbp := withProfile("640028"), withProfile("42c01e")
	frames := slices.DeleteFunc(slices.Clone(msgs), func(m bus.Message) bool { return m.Tracks != nil })
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	v, rec := join(t, r, *high.Tracks)
	v.Start()
	b.send("p", high)
	b.send("p", frames[:50]...)
	b.send("p", cbp)
	fresh, freshRec := join(t, r, *cbp.Tracks)
	fresh.Start()
	b.send("p", frames[50:]...)
	srcV, _ := framesOfMsgs(msgs)
	video, _ := splitKinds(waitFrames(t, rec, len(srcV), 0))
	checkVideo(t, srcV, depacketizeH264(t, video))
	if n := len(freshRec.waitFor(t, 10*time.Second, "a packet", func(p []sent) bool { return len(p) > 0 })); n == 0 {
		t.Fatal("the viewer of the new announcement got nothing")
	}
	for _, x := range []*Viewer{v, fresh} {
		select {
		case <-x.Done():
			t.Fatalf("viewer ended: %v", x.Err())
		default:
		}
	}
}

func TestViewerWaitsForNewerTracks(t *testing.T) {
	checkLeaks(t)
	av := messages("w", 1, readFixture(t, "av.ts"))
	vid := messages("w", 2, readFixture(t, "video.ts"))
	r, b := newTestRelay(t, Config{}, nil)
	old, _ := join(t, r, firstAnnouncement(t, av))
	old.Start()
	b.send("w", av[:20]...)
	// The catalog already has epoch 2 (video only); the bus is behind.
	v, rec := join(t, r, firstAnnouncement(t, vid))
	v.Start()
	b.send("w", av[20:40]...)
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("viewer of the newer tracks got %d packets of the old ones", n)
	}
	b.send("w", vid...)
	srcV, _ := framesOfMsgs(vid)
	pkts := waitFrames(t, rec, len(srcV), 0)
	video, _ := splitKinds(pkts)
	checkVideo(t, srcV, depacketizeH264(t, video))
	if !errors.Is(old.Err(), ErrTracksChanged) {
		t.Fatalf("old viewer: %v", old.Err())
	}
}

func TestStreamEndedAfterGrace(t *testing.T) {
	checkLeaks(t)
	msgs := messages("x", 1, readFixture(t, "av.ts"))
	ann := firstAnnouncement(t, msgs)
	cat := newFakeCatalog()
	live := bus.CatalogEntry{Stream: "x", Epoch: 1, State: bus.StateLive, Tracks: ann}
	ended := live
	ended.State = bus.StateEnded
	cat.set(live)
	const grace = 100 * time.Millisecond
	r, b := newTestRelay(t, Config{EndGrace: grace}, cat)
	v, _ := join(t, r, ann)
	v.Start()
	b.send("x", msgs[:10]...)

	// Ended, then live again within the grace: the viewer stays.
	cat.set(ended)
	cat.set(live)
	select {
	case <-v.Done():
		t.Fatalf("viewer ended although the stream came back: %v", v.Err())
	case <-time.After(4 * grace):
	}

	start := time.Now()
	cat.set(ended)
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("viewer not ended")
	}
	if el := time.Since(start); el < grace {
		t.Fatalf("ended after %s, before the grace %s", el, grace)
	}
	if !errors.Is(v.Err(), ErrStreamEnded) {
		t.Fatalf("Err %v", v.Err())
	}
	if _, err := r.Join(t.Context(), ann, Want{Video: true}); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("join of an ended stream: %v", err)
	}
	cat.set(live)
	w, err := r.Join(t.Context(), ann, Want{Video: true})
	if err != nil {
		t.Fatalf("join once the stream is live again: %v", err)
	}
	w.Close()
}

func TestSubscriptionLostEndsViewers(t *testing.T) {
	checkLeaks(t)
	msgs := messages("l", 1, readFixture(t, "av.ts"))
	ann := firstAnnouncement(t, msgs)
	r, b := newTestRelay(t, Config{}, nil)
	v, _ := join(t, r, ann)
	v.Start()
	cause := errors.New("stream deleted")
	b.fail("l", cause)
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("viewer not ended")
	}
	if !errors.Is(v.Err(), ErrSubscription) || !errors.Is(v.Err(), cause) {
		t.Fatalf("Err %v", v.Err())
	}
	// The next viewer gets a new hub and subscription.
	w, _ := join(t, r, ann)
	if b.opened != 2 {
		t.Fatalf("%d subscriptions opened, want 2", b.opened)
	}
	w.Close()
	v.Close()
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestJoinSubscribeErrors(t *testing.T) {
	checkLeaks(t)
	msgs := messages("j", 1, readFixture(t, "av.ts"))
	ann := firstAnnouncement(t, msgs)
	r, b := newTestRelay(t, Config{}, nil)
	b.failNext = errors.New("no stream")
	if _, err := r.Join(t.Context(), ann, Want{Video: true}); !errors.Is(err, ErrSubscription) {
		t.Fatalf("join: %v", err)
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats after a failed join %+v", s)
	}
	// A join whose context ends while the subscription is set up.
	b.block = make(chan struct{})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Join(ctx, ann, Want{Video: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("join: %v", err)
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats after a cancelled join %+v", s)
	}
}

func TestRelayCloseEndsViewers(t *testing.T) {
	checkLeaks(t)
	msgs := messages("z", 1, readFixture(t, "av.ts"))
	ann := firstAnnouncement(t, msgs)
	r, b := newTestRelay(t, Config{}, newFakeCatalog())
	v, _ := join(t, r, ann)
	v.Start()
	b.send("z", msgs[:30]...)
	r.Close()
	<-v.Done()
	if !errors.Is(v.Err(), ErrClosed) {
		t.Fatalf("Err %v", v.Err())
	}
	if _, err := r.Join(t.Context(), ann, Want{Video: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
	v.Close()
	v.Close()
	r.Close()
}

func TestManyViewersOneSubscription(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("m", 1, events)
	ann := firstAnnouncement(t, msgs)
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	const n = 100
	viewers := make([]*Viewer, n)
	recs := make([]*recorder, n)
	for i := range viewers {
		viewers[i], recs[i] = join(t, r, ann)
		viewers[i].Start()
	}
	if s := r.Stats(); s != (Stats{Streams: 1, Subscriptions: 1, Viewers: n}) {
		t.Fatalf("stats %+v", s)
	}
	b.send("m", msgs...)
	srcV, srcA := framesOf(events)
	var first []sent
	for i, rec := range recs {
		pkts := waitFrames(t, rec, len(srcV), len(srcA))
		video, audio := splitKinds(pkts)
		checkVideo(t, srcV, depacketizeH264(t, video))
		checkAudio(t, srcA, audio)
		if i == 0 {
			first = pkts
			continue
		}
		// The same shared payloads, in the same order.
		for j := range pkts {
			if &pkts[j].payload[0] != &first[j].payload[0] {
				t.Fatalf("viewer %d packet %d: payload not shared", i, j)
			}
		}
	}
	for _, v := range viewers {
		v.Close()
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats after closing %+v", s)
	}
}

func TestJoinCloseChurn(t *testing.T) {
	checkLeaks(t)
	msgs := messages("c0", 1, readFixture(t, "av.ts"))
	r, b := newTestRelay(t, Config{}, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ann := firstAnnouncement(t, msgs)
				ann.Stream = fmt.Sprintf("c%d", i%3)
				v, err := r.Join(t.Context(), ann, Want{Video: true, Audio: i%2 == 0})
				if err != nil {
					t.Error(err)
					return
				}
				bind(t, v.VideoTrack(), 1, newRecorder())
				if i%3 != 2 {
					v.Start()
				}
				v.Close()
			}
		}()
	}
	// Meanwhile frames flow on one of the streams.
	for i := 0; i < 20; i++ {
		b.send("c0", msgs...)
	}
	wg.Wait()
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestGOPOverLimitWaitsForKeyframe(t *testing.T) {
	checkLeaks(t)
	msgs := messages("g", 1, readFixture(t, "av.ts"))
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	r.maxGOPFrames = 20 // av.ts has 30-frame GOPs
	early, _ := join(t, r, firstAnnouncement(t, msgs))
	early.Start()
	srcV, _ := framesOfMsgs(msgs)
	cut := splitAfterVideo(msgs, 10)
	b.send("g", msgs[:cut]...)
	v1, rec1 := join(t, r, firstAnnouncement(t, msgs))
	v1.Start()
	// 25 frames into the second GOP: its cache went over the limit.
	cut2 := splitAfterVideo(msgs, 55)
	b.send("g", msgs[cut:cut2]...)
	v2, rec2 := join(t, r, firstAnnouncement(t, msgs))
	v2.Start()
	b.send("g", msgs[cut2:]...)

	aus1 := depacketizeH264(t, splitVideo(waitFrames(t, rec1, len(srcV), 0)))
	if len(aus1) != len(srcV) || v1.Stats().Replayed != 10 {
		t.Fatalf("viewer within the limit: %d access units, %d replayed", len(aus1), v1.Stats().Replayed)
	}
	aus2 := depacketizeH264(t, splitVideo(waitFrames(t, rec2, len(srcV)-60, 0)))
	if len(aus2) != len(srcV)-60 || v2.Stats().Replayed != 0 || !srcV[60].Key {
		t.Fatalf("viewer over the limit: %d access units, %d replayed", len(aus2), v2.Stats().Replayed)
	}
	if err := sameNALs(nalsOf(t, srcV[60].Data), aus2[0].nals); err != nil {
		t.Fatalf("first access unit is not the next keyframe: %v", err)
	}
}

func splitVideo(p []sent) []sent {
	v, _ := splitKinds(p)
	return v
}
