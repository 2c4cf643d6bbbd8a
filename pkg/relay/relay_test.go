package relay

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pion/rtcp"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
)

// waitDone waits for a feed to finish.
func waitDone(t testing.TB, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publish did not finish")
	}
}

// eventually polls cond until it holds or d passes (for counters that have
// no event to wait on, such as RTCP-fed statistics).
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timeout after %s waiting for %s", d, what)
		}
	}
}

func countMarkers(p []sent) int {
	n := 0
	for _, s := range p {
		if s.hdr.Marker {
			n++
		}
	}
	return n
}

func TestBusPeerConnectionAV(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "av", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("av", 1, events)
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	// Without RTX: pion returns an RTX repair only with a later media
	// packet, and the NACK below comes after the last one
	// (TestLossyViewerGetsEveryPacket covers RTX).
	p := connectPeerWith(t, v, ann, peerOptions{noRTX: true})
	v.Start()
	feedStart := time.Now()
	waitDone(t, feed{events: events, speed: 2}.start(t, pub))

	srcV, srcA := framesOf(events)
	video := p.video.waitFor(t, 10*time.Second, "video", func(s []sent) bool { return countMarkers(s) >= len(srcV) })
	audio := p.audio.waitCount(t, len(srcA))
	checkVideo(t, srcV, depacketizeH264(t, video))
	checkAudio(t, srcA, audio)

	// A NACK from the client is answered from the stream's buffer: the same
	// packet again (the client has SRTP replay protection off to see it).
	n := len(p.video.snapshot())
	want := video[42]
	p.nack(t, want.hdr.SSRC, want.hdr.SequenceNumber)
	got := p.video.waitCount(t, n+1)[n]
	if got.hdr.SequenceNumber != want.hdr.SequenceNumber || got.hdr.Timestamp != want.hdr.Timestamp ||
		!bytes.Equal(got.payload, want.payload) {
		t.Fatalf("retransmission seq %d ts %d, want seq %d ts %d", got.hdr.SequenceNumber, got.hdr.Timestamp,
			want.hdr.SequenceNumber, want.hdr.Timestamp)
	}
	// PLI and FIR from the client are counted.
	if err := p.client.WriteRTCP([]rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: want.hdr.SSRC},
		&rtcp.FullIntraRequest{MediaSSRC: want.hdr.SSRC, FIR: []rtcp.FIREntry{{SSRC: want.hdr.SSRC, SequenceNumber: 1}}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the PLI and FIR counted", func() bool {
		s := v.Stats().Video
		return s.PLIs == 1 && s.FIRs == 1
	})
	// Receiver reports (the client sends them every second) give the RTT.
	eventually(t, 10*time.Second, "an RTT from receiver reports", func() bool { return v.Stats().RTT > 0 })
	st := v.Stats()
	if st.Video.Retransmits != 1 || st.Video.NACKs != 1 || st.Video.Frames != uint64(len(srcV)) ||
		st.Audio.Frames != uint64(len(srcA)) || st.RTT > time.Second || st.Video.WriteErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("stats: %+v", st)

	// Every sampled frame was observed once (Close waits for the writer),
	// with its JetStream store time: the NATS server runs on this host's
	// clock, so no ingest delay is below zero. None can be longer than the
	// test (on a loaded machine, -race, they may exceed 1 s).
	v.Close()
	elapsed := time.Since(feedStart)
	st = v.Stats()
	ns := countTrue(sampledFlags(messages("av", 1, events)))
	checkDelays(t, "bus to RTP", st.BusToRTP, ns, 0, elapsed)
	checkDelays(t, "ingest to RTP", st.IngestToRTP, ns, 0, elapsed)
	if st.IngestToRTP.Sum < st.BusToRTP.Sum {
		t.Fatalf("ingest to RTP sum %s < bus to RTP sum %s", st.IngestToRTP.Sum, st.BusToRTP.Sum)
	}
	t.Logf("bus to RTP mean %s, ingest to RTP mean %s", st.BusToRTP.Sum/time.Duration(ns), st.IngestToRTP.Sum/time.Duration(ns))
}

func TestBusPeerConnectionLateJoiner(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "gop4.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "late", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("late", 1, events)
	// Join 1.5 s into the first 4 s GOP.
	done := feed{events: events, speed: 1, mark: 45}.startMarked(t, pub)
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeer(t, v, ann)
	start := time.Now()
	v.Start()
	waitDone(t, done)

	srcV, _ := framesOf(events)
	video := p.video.waitFor(t, 10*time.Second, "the last frame", func(s []sent) bool {
		aus := countMarkers(s)
		return aus > 0 && s[len(s)-1].hdr.Marker && bytes.HasSuffix(srcV[len(srcV)-1].Data, s[len(s)-1].payload[len(s[len(s)-1].payload)-8:])
	})
	aus := depacketizeH264(t, video)
	if got := nalTypes(aus[0].nals); len(got) < 3 || got[0] != 7 || got[1] != 8 || got[len(got)-1] != 5 {
		t.Fatalf("first access unit has NAL types %v, want SPS, PPS, ..., IDR", got)
	}
	k := -1
	for i := range srcV {
		if srcV[i].Key && sameNALs(nalsOf(t, srcV[i].Data), aus[0].nals) == nil {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatal("first access unit is not a keyframe of the stream")
	}
	if len(aus) != len(srcV)-k {
		t.Fatalf("%d access units from keyframe %d, want %d", len(aus), k, len(srcV)-k)
	}
	for i := range aus {
		if err := sameNALs(nalsOf(t, srcV[k+i].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
	}
	st := v.Stats()
	ttfk := video[0].at.Sub(start)
	t.Logf("joined mid-GOP: %d frames replayed; Start to first keyframe at the client %s (relay: %s)", st.Replayed, ttfk, st.TimeToFirstFrame)
	if k != 0 || st.Replayed < 45 {
		t.Fatalf("started at keyframe %d with %d frames replayed, want keyframe 0 and the GOP so far", k, st.Replayed)
	}
	if ttfk > time.Second {
		t.Fatalf("first keyframe %s after Start", ttfk)
	}

	// The replay is paced at DefaultReplayRate times real time, its
	// timestamps advancing in step: a fast-forward to the live feed.
	replayEnd := aus[st.Replayed-1]
	ts, pts := make([]uint32, len(aus)), make([]int64, len(aus))
	for i := range aus {
		ts[i], pts[i] = aus[i].ts, srcV[i].PTS
	}
	if live := checkCatchUpSteps(t, ts, pts, DefaultReplayRate); live <= st.Replayed {
		t.Errorf("caught up at frame %d, before the end of the %d replayed", live, st.Replayed)
	}
	replayTook := video[replayEnd.at].at.Sub(start)
	t.Logf("replay of %d frames received %s after Start", st.Replayed, replayTook)
	if replayTook > time.Second {
		t.Fatalf("replay took %s", replayTook)
	}

	// After the replay, arrival time follows the RTP clock: the offset
	// between them does not grow (the replay added no latency), through the
	// catch-up and after it. Medians of
	// windows, after the first second, keep scheduling noise of a loaded
	// machine out.
	var offsets []float64
	for i := st.Replayed; i < len(aus); i++ {
		at := video[aus[i].at].at
		offsets = append(offsets, at.Sub(start).Seconds()-float64(aus[i].ts-aus[st.Replayed].ts)/90000)
	}
	if len(offsets) < 150 {
		t.Fatalf("only %d live frames", len(offsets))
	}
	median := func(x []float64) float64 {
		y := slices.Clone(x)
		slices.Sort(y)
		return y[len(y)/2]
	}
	early, late := median(offsets[30:90]), median(offsets[len(offsets)-60:])
	t.Logf("live frames: arrival minus RTP time, median %.1f ms after 1 s, %.1f ms at the end", early*1000, late*1000)
	if math.Abs(late-early) > 0.05 || math.Abs(early) > 0.5 {
		t.Fatalf("arrival drifts from the RTP clock: %.3f s after 1 s, %.3f s at the end", early, late)
	}
}

func TestBusPeerConnectionWrap(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "wrap.ts")
	srcV, srcA := framesOf(events)
	// wrap.ts starts just after the 33-bit wrap; shifted so that the wrap
	// (and the 32-bit wrap of the RTP timestamps) falls 1 s into it.
	for _, shift := range []int64{0, 1<<33 - srcV[0].PTS - 90000} {
		t.Run("", func(t *testing.T) {
			nc := natstest.EmbeddedConn(t)
			pub := newPublisher(t, nc, "wrap", 1)
			r := newBusRelay(t, Config{Conn: nc})
			ann := busAnnouncement("wrap", 1, events)
			v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			p := connectPeer(t, v, ann)
			v.Start()
			waitDone(t, feed{events: events, speed: 2, shift: shift}.start(t, pub))
			video := p.video.waitFor(t, 10*time.Second, "video", func(s []sent) bool { return countMarkers(s) >= len(srcV) })
			audio := p.audio.waitCount(t, len(srcA))
			checkVideo(t, srcV, depacketizeH264(t, video))
			checkAudio(t, srcA, audio)
			if shift != 0 && (srcV[0].PTS+shift >= 1<<33 || srcV[len(srcV)-1].PTS+shift < 1<<33) {
				t.Fatal("the shifted stream does not cross 2^33")
			}
		})
	}
}

func TestBusEpochChange(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	r := newBusRelay(t, Config{Conn: nc, ViewerQueue: 2048})
	pub1 := newPublisher(t, nc, "ep", 1)
	ann := busAnnouncement("ep", 1, events)
	v, rec := join(t, r, ann)
	v.Start()
	waitDone(t, feed{events: events}.start(t, pub1))
	srcV, srcA := framesOf(events)
	waitFrames(t, rec, len(srcV), len(srcA))
	// A new publication: epoch 2, timestamps restart.
	pub2 := newPublisher(t, nc, "ep", 2)
	waitDone(t, feed{events: events}.start(t, pub2))
	pkts := waitFrames(t, rec, 2*len(srcV), len(srcA)+1)
	if err := v.Err(); err != nil {
		t.Fatalf("viewer ended: %v", err)
	}
	video, audio := splitKinds(pkts)
	aus := depacketizeH264(t, video) // sequence numbers continue
	if len(aus) != 2*len(srcV) {
		t.Fatalf("%d access units, want %d", len(aus), 2*len(srcV))
	}
	for i := range aus {
		if err := sameNALs(nalsOf(t, srcV[i%len(srcV)].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if i > 0 && aus[i].ts-aus[i-1].ts != 3000 {
			t.Fatalf("access unit %d: ts delta %d, want 3000", i, aus[i].ts-aus[i-1].ts)
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

func TestBusManyViewersOneConsumer(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "many", 1)
	r := newBusRelay(t, Config{Conn: nc, ViewerQueue: 1024})
	ann := busAnnouncement("many", 1, events)
	const n = 100
	recs := make([]*recorder, 0, n)
	for i := 0; i < n-1; i++ {
		v, rec := join(t, r, ann)
		v.Start()
		recs = append(recs, rec)
	}
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeer(t, v, ann)
	v.Start()
	if s := r.Stats(); s != (Stats{Streams: 1, Subscriptions: 1, Viewers: n}) {
		t.Fatalf("stats %+v", s)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := bus.SubjectsFor("many")
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(waitCtx(t, 5*time.Second), subj.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().State.Consumers; c != 1 {
		t.Fatalf("%d consumers on the stream, want 1", c)
	}
	waitDone(t, feed{events: events, speed: 4}.start(t, pub))
	srcV, srcA := framesOf(events)
	for _, rec := range recs {
		pkts := waitFrames(t, rec, len(srcV), len(srcA))
		video, audio := splitKinds(pkts)
		checkVideo(t, srcV, depacketizeH264(t, video))
		checkAudio(t, srcA, audio)
	}
	video := p.video.waitFor(t, 10*time.Second, "video", func(s []sent) bool { return countMarkers(s) >= len(srcV) })
	checkVideo(t, srcV, depacketizeH264(t, video))
	checkAudio(t, srcA, p.audio.waitCount(t, len(srcA)))
}

func TestBusStreamEndedFromCatalog(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	w, err := bus.WatchCatalog(waitCtx(t, 10*time.Second), nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	pub := newPublisher(t, nc, "end", 1)
	const grace = 200 * time.Millisecond
	r := newBusRelay(t, Config{Conn: nc, Catalog: w, EndGrace: grace})
	ann := busAnnouncement("end", 1, events)
	v, rec := join(t, r, ann)
	v.Start()
	waitDone(t, feed{events: events[:60]}.start(t, pub))
	rec.waitCount(t, 1)
	closed := time.Now()
	if err := pub.Shutdown(waitCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("viewer not ended")
	}
	if !errors.Is(v.Err(), ErrStreamEnded) {
		t.Fatalf("Err %v", v.Err())
	}
	if el := time.Since(closed); el < grace {
		t.Fatalf("ended %s after the publisher closed, before the grace", el)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	for _, c := range []Config{
		{},
		{Conn: nc, Start: "soon"},
		{Conn: nc, ViewerQueue: -1},
		{Conn: nc, RetransmitPackets: MaxRetransmitPackets + 1},
		{Conn: nc, EndGrace: -time.Second},
	} {
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): %v, want ErrInvalidConfig", c, err)
		}
	}
	r, err := New(Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.cfg.Start != StartGOP || r.cfg.ViewerQueue != DefaultViewerQueue || r.cfg.RetransmitPackets != DefaultRetransmitPackets ||
		r.cfg.EndGrace != DefaultEndGrace {
		t.Fatalf("defaults %+v", r.cfg)
	}
}

func TestBusJoinCloseReleasesSubscriptions(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "churn", 1)
	waitDone(t, feed{events: events[:100]}.start(t, pub))
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("churn", 1, events)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := bus.SubjectsFor("churn")
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := js.Stream(waitCtx(t, 5*time.Second), subj.Stream)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().State.Consumers
	}
	for i := 0; i < 20; i++ {
		a, recA := join(t, r, ann)
		b, _ := join(t, r, ann)
		a.Start()
		b.Start()
		recA.waitCount(t, 1) // the GOP cache was filled from the bus
		if s := r.Stats(); s != (Stats{Streams: 1, Subscriptions: 1, Viewers: 2}) {
			t.Fatalf("round %d: stats %+v", i, s)
		}
		if c := consumers(); c != 1 {
			t.Fatalf("round %d: %d consumers, want 1", i, c)
		}
		a.Close()
		b.Close()
		if s := r.Stats(); s != (Stats{}) {
			t.Fatalf("round %d: stats after closing %+v", i, s)
		}
		if c := consumers(); c != 0 {
			t.Fatalf("round %d: %d consumers after closing, want 0", i, c)
		}
	}
}
