package relay

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// nackAll is a NACK of every sequence number from first to last (pairs of
// 17 by bitmask).
func nackAll(ssrc uint32, first, last uint16) *rtcp.TransportLayerNack {
	n := &rtcp.TransportLayerNack{MediaSSRC: ssrc}
	for s := first; ; s += 17 {
		n.Nacks = append(n.Nacks, rtcp.NackPair{PacketID: s, LostPackets: 0xffff})
		if last-s <= 16 {
			break
		}
	}
	return n
}

// A viewer that NACKs every packet it was sent, again and again while the
// stream goes on, gets each packet resent at most MaxResends times, and the
// other viewer of the stream gets every live frame, in order, without
// waiting behind the flood.
func TestNACKFloodIsBoundedAndSparesOthers(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s1", 1, events)
	// Each video frame gets a slice NAL of 8000 bytes more (7 packets), so
	// that the backlog holds more packets than a viewer's resend memory.
	filler := append([]byte{0, 0, 0, 1, 0x01}, bytes.Repeat([]byte{0x5a}, 8000)...)
	for i := range msgs {
		if msgs[i].Tracks == nil && msgs[i].Frame.Codec == tsframes.CodecH264 {
			msgs[i].Frame.Data = slices.Concat(msgs[i].Frame.Data, filler)
		}
	}
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	ann := firstAnnouncement(t, msgs)
	hostile, hrec := join(t, r, ann)
	normal, nrec := join(t, r, ann)
	hostile.Start()
	normal.Start()

	split := len(msgs) / 2
	b.send("s1", msgs[:split]...)
	srcV, srcA := framesOfMsgs(msgs[:split])
	waitFrames(t, hrec, len(srcV), len(srcA))
	before := len(waitFrames(t, nrec, len(srcV), len(srcA)))
	video, _ := splitKinds(hrec.snapshot())
	nack := nackAll(ssrcVideo, video[0].hdr.SequenceNumber, video[len(video)-1].hdr.SequenceNumber)
	distinct := 17 * len(nack.Nacks) // the last pair may reach into the live part
	if distinct <= resendSlots {
		t.Fatalf("%d packets NACKed, want more than the %d a viewer remembers", distinct, resendSlots)
	}

	// The flood: the whole backlog NACKed every millisecond until the live
	// part has been sent.
	floodStart := time.Now()
	stop, flooded := make(chan struct{}), make(chan int)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-stop:
				flooded <- n
				return
			case <-tick.C:
				hostile.handleRTCP([]rtcp.Packet{nack}, time.Now())
				n++
			}
		}
	}()

	// The live part, a frame every 2 ms; the normal viewer's latency is
	// measured from each send to the frame's last packet written to it.
	var sentV, sentA []time.Time
	pace := time.NewTicker(2 * time.Millisecond)
	for _, m := range msgs[split:] {
		<-pace.C
		if m.Tracks == nil {
			switch m.Frame.Codec {
			case tsframes.CodecH264:
				sentV = append(sentV, time.Now())
			case tsframes.CodecOpus:
				sentA = append(sentA, time.Now())
			}
		}
		b.send("s1", m)
	}
	pace.Stop()
	liveV, liveA := framesOfMsgs(msgs[split:])
	all := waitFrames(t, nrec, len(srcV)+len(liveV), len(srcA)+len(liveA))
	close(stop)
	rounds := <-flooded

	// The normal viewer: every frame, in order, each soon after its send.
	v, a := splitKinds(all)
	checkVideo(t, slices.Concat(srcV, liveV), depacketizeH264(t, v))
	checkAudio(t, slices.Concat(srcA, liveA), a)
	var worst time.Duration
	k, j := 0, 0
	for _, p := range all[before:] {
		var at time.Time
		switch {
		case p.hdr.PayloadType == fakePTVideo && p.hdr.Marker:
			at, k = sentV[k], k+1
		case p.hdr.PayloadType == fakePTAudio:
			at, j = sentA[j], j+1
		default:
			continue
		}
		worst = max(worst, p.at.Sub(at))
	}
	ns := normal.Stats()
	if ns.Video.Drops != 0 || ns.Video.Retransmits != 0 || ns.Audio.Drops != 0 {
		t.Errorf("normal viewer stats %+v", ns)
	}
	t.Logf("%d NACKs of %d packets each; the normal viewer's worst latency over %d live frames: %v",
		rounds, distinct, len(liveV)+len(liveA), worst)
	if worst > 100*time.Millisecond {
		t.Errorf("a live frame reached the normal viewer %v after its send, want < 100 ms", worst)
	}

	// The hostile viewer: each packet resent at most MaxResends times,
	// every NACKed packet accounted for.
	hs := hostile.Stats().Video
	t.Logf("hostile viewer: %d packets NACKed, %d resent, %d suppressed, %d missed", hs.NACKs, hs.Retransmits, hs.Suppressed, hs.Missed)
	// Within one resendHold (the flood usually lasts less), each packet at
	// most MaxResends times and at most MaxResends*resendSlots in all.
	holds := int(time.Since(floodStart)/resendHold) + 1
	if limit := holds * MaxResends * min(distinct, resendSlots); hs.Retransmits > uint64(limit) {
		t.Errorf("%d retransmissions for %d distinct packets, want at most %d", hs.Retransmits, distinct, limit)
	}
	if hs.Retransmits == 0 {
		t.Error("nothing resent")
	}
	if rounds < 100 || hs.NACKs < uint64(rounds*distinct) {
		t.Errorf("%d NACK rounds counted as %d packets, want at least 100 rounds of %d", rounds, hs.NACKs, distinct)
	}
}

// A viewer that leaves in the middle of its paced replay ends at once: its
// writer stops, nothing more is written to it, the hub forgets it, and the
// stream's other viewer gets every frame.
func TestViewerLeavingDuringReplay(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "gop4.ts")
	msgs := messages("s1", 1, events)
	var keys []int
	for i, m := range msgs {
		if m.Tracks == nil && m.Frame.Codec == tsframes.CodecH264 && m.Frame.Key {
			keys = append(keys, i)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("%d keyframes in gop4.ts, want at least 2", len(keys))
	}
	// A slow replay (1.5 times real time): the leaver is still in it when
	// it leaves.
	r, b := newTestRelay(t, Config{ViewerQueue: 1024, ReplayRate: 1.5}, nil)
	ann := firstAnnouncement(t, msgs)
	other, orec := join(t, r, ann)
	other.Start()
	cut := keys[0] + (keys[1]-keys[0])*3/4
	b.send("s1", msgs[:cut]...)
	srcV, srcA := framesOfMsgs(msgs[:cut])
	waitFrames(t, orec, len(srcV), len(srcA))

	leaver, lrec := join(t, r, ann)
	leaver.Start()
	lrec.waitFor(t, 10*time.Second, "the replayed keyframe", func(p []sent) bool {
		v, _ := countFrames(p)
		return v >= 1
	})
	st := leaver.Stats()
	if st.Replayed == 0 || st.CatchUp != 0 {
		t.Fatalf("leaver stats %+v: want a replay under way", st)
	}
	began := time.Now()
	leaver.Close()
	if d := time.Since(began); d > time.Second {
		t.Errorf("Close took %v in the middle of the replay", d)
	}
	written := len(lrec.snapshot())
	if s := r.Stats(); s.Viewers != 1 {
		t.Errorf("relay stats %+v after the leaver left, want 1 viewer", s)
	}

	b.send("s1", msgs[cut:]...)
	allV, allA := framesOfMsgs(msgs)
	pkts := waitFrames(t, orec, len(allV), len(allA))
	v, a := splitKinds(pkts)
	checkVideo(t, allV, depacketizeH264(t, v))
	checkAudio(t, allA, a)
	if n := len(lrec.snapshot()); n != written {
		t.Errorf("%d packets written to the leaver after Close returned", n-written)
	}
	t.Logf("the leaver got %d packets of its replay (%d frames replayed) before it left", written, st.Replayed)
}
