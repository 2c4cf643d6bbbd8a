package relay

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/whepcast/whepcast/pkg/bus"
)

const (
	ssrcVideo = 0x1111
	ssrcAudio = 0x2222
)

// join joins a viewer of ann with both kinds bound to one recorder.
func join(t testing.TB, r *Relay, ann bus.Announcement) (*Viewer, *recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v, err := r.Join(ctx, ann, Want{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	rec := newRecorder()
	if tr := v.VideoTrack(); tr != nil {
		bind(t, tr, ssrcVideo, rec)
	}
	if tr := v.AudioTrack(); tr != nil {
		bind(t, tr, ssrcAudio, rec)
	}
	return v, rec
}

// countFrames counts packets with the marker bit (video access units) and
// audio packets.
func countFrames(p []sent) (video, audio int) {
	for _, s := range p {
		switch {
		case s.hdr.PayloadType == fakePTVideo && s.hdr.Marker:
			video++
		case s.hdr.PayloadType == fakePTAudio:
			audio++
		}
	}
	return video, audio
}

func waitFrames(t testing.TB, rec *recorder, video, audio int) []sent {
	t.Helper()
	return rec.waitFor(t, 10*time.Second, "frames", func(p []sent) bool {
		v, a := countFrames(p)
		return v >= video && a >= audio
	})
}

func TestViewerGetsEveryFrame(t *testing.T) {
	checkLeaks(t)
	for _, fixture := range []string{"av.ts", "wrap.ts"} {
		t.Run(fixture, func(t *testing.T) {
			events := readFixture(t, fixture)
			msgs := messages("s1", 1, events)
			r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
			v, rec := join(t, r, firstAnnouncement(t, msgs))
			v.Start()
			b.send("s1", msgs...)
			srcV, srcA := framesOf(events)
			pkts := waitFrames(t, rec, len(srcV), len(srcA))
			video, audio := splitKinds(pkts)
			checkVideo(t, srcV, depacketizeH264(t, video))
			checkAudio(t, srcA, audio)
			for _, p := range video {
				if p.hdr.SSRC != ssrcVideo || len(p.payload) > MaxPayload {
					t.Fatalf("video packet ssrc %x, %d bytes", p.hdr.SSRC, len(p.payload))
				}
			}
			// The counters follow the writes of the last packets.
			eventually(t, 5*time.Second, "the frame counters", func() bool {
				st := v.Stats()
				return st.Video.Frames == uint64(len(srcV)) && st.Audio.Frames == uint64(len(srcA))
			})
			st := v.Stats()
			if st.Video.Frames != uint64(len(srcV)) || st.Audio.Frames != uint64(len(srcA)) ||
				st.Video.Packets != uint64(len(video)) || st.Video.Drops != 0 || st.TimeToFirstFrame <= 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestViewerJoinNoTracks(t *testing.T) {
	checkLeaks(t)
	r, _ := newTestRelay(t, Config{}, nil)
	ctx := t.Context()
	ann := bus.Announcement{Stream: "aac", Epoch: 1, Video: 256, Tracks: nil}
	if _, err := r.Join(ctx, ann, Want{Video: true, Audio: true}); !errors.Is(err, ErrNoTracks) {
		t.Fatalf("join without tracks: %v", err)
	}
	if _, err := r.Join(ctx, bus.Announcement{Stream: "a b"}, Want{Video: true}); !errors.Is(err, bus.ErrInvalidName) {
		t.Fatalf("join with a bad name: %v", err)
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestViewerRetransmitsFromSharedBuffer(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s1", 1, events)
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	v.Start()
	b.send("s1", msgs[:200]...)
	srcV, srcA := framesOf(events[:200])
	pkts := waitFrames(t, rec, len(srcV), len(srcA))
	video, _ := splitKinds(pkts)
	n := len(pkts)

	// NACK two packets: one alone and one by bitmask.
	a, c := video[3], video[10]
	nack := &rtcp.TransportLayerNack{MediaSSRC: ssrcVideo, Nacks: []rtcp.NackPair{
		{PacketID: a.hdr.SequenceNumber},
		{PacketID: c.hdr.SequenceNumber - 2, LostPackets: 1 << 1},
	}}
	v.handleRTCP([]rtcp.Packet{nack}, time.Now())
	got := rec.waitCount(t, n+3)[n:]
	// PacketID c-2 itself is retransmitted too.
	want := []sent{a, video[8], c}
	for i := range want {
		if got[i].hdr.SequenceNumber != want[i].hdr.SequenceNumber || got[i].hdr.Timestamp != want[i].hdr.Timestamp ||
			got[i].hdr.Marker != want[i].hdr.Marker || got[i].hdr.SSRC != ssrcVideo ||
			&got[i].payload[0] != &want[i].payload[0] {
			t.Fatalf("retransmission %d: %+v, want %+v (same shared payload)", i, got[i].hdr, want[i].hdr)
		}
	}
	// A sequence number never sent is missed; NACKs are answered in order,
	// so once the next one is answered the miss is counted.
	v.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrcVideo, Nacks: []rtcp.NackPair{{PacketID: video[len(video)-1].hdr.SequenceNumber + 100}}}}, time.Now())
	v.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrcVideo, Nacks: []rtcp.NackPair{{PacketID: video[0].hdr.SequenceNumber}}}}, time.Now())
	if p := rec.waitCount(t, n+4)[n+3]; p.hdr.SequenceNumber != video[0].hdr.SequenceNumber {
		t.Fatalf("retransmitted seq %d, want %d", p.hdr.SequenceNumber, video[0].hdr.SequenceNumber)
	}
	v.handleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrcVideo}, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: ssrcVideo}}}}, time.Now())
	st := v.Stats().Video
	if st.NACKs != 5 || st.Retransmits != 4 || st.Missed != 1 || st.PLIs != 1 || st.FIRs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestViewerReceiverReport(t *testing.T) {
	checkLeaks(t)
	msgs := messages("s1", 1, readFixture(t, "av.ts"))
	r, _ := newTestRelay(t, Config{}, nil)
	v, _ := join(t, r, firstAnnouncement(t, msgs))
	now := time.Now()
	// The receiver got our SR 150 ms ago and held it for 50 ms: RTT 100 ms.
	lsr := ntpMiddle32(now.Add(-150 * time.Millisecond))
	rr := &rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{
		{SSRC: ssrcVideo, FractionLost: 64, TotalLost: 12, Jitter: 900, LastSenderReport: lsr, Delay: 65536 / 20},
		{SSRC: ssrcAudio, FractionLost: 0, TotalLost: 1, Jitter: 480},
	}}
	v.handleRTCP([]rtcp.Packet{rr}, now)
	st := v.Stats()
	if st.Video.FractionLost != 0.25 || st.Video.PacketsLost != 12 || st.Video.Jitter != 10*time.Millisecond {
		t.Fatalf("video %+v", st.Video)
	}
	if st.Audio.PacketsLost != 1 || st.Audio.Jitter != 10*time.Millisecond {
		t.Fatalf("audio %+v", st.Audio)
	}
	if d := st.RTT - 100*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("RTT %s, want 100ms", st.RTT)
	}
}

// spanBatcher records, for each batch, how many packets the recorder got
// between Begin and Flush.
type spanBatcher struct {
	rec   *recorder
	open  bool
	start int
	spans []int
	bad   string
}

func (b *spanBatcher) Begin() bool {
	if b.open {
		b.bad = "Begin while open"
	}
	b.open, b.start = true, len(b.rec.snapshot())
	return true
}

func (b *spanBatcher) Flush() {
	if !b.open {
		b.bad = "Flush while closed"
	}
	b.open = false
	b.spans = append(b.spans, len(b.rec.snapshot())-b.start)
}

// TestViewerBatchesMultiPacketFrames: each video frame of several packets,
// and each group of audio packets that arrived together, is one batch.
func TestViewerBatchesMultiPacketFrames(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	msgs := messages("s1", 1, events)
	r, b := newTestRelay(t, Config{ViewerQueue: 1024}, nil)
	v, rec := join(t, r, firstAnnouncement(t, msgs))
	sb := &spanBatcher{rec: rec}
	v.SetBatcher(sb)
	v.Start()
	b.send("s1", msgs...)
	srcV, srcA := framesOf(events)
	pkts := waitFrames(t, rec, len(srcV), len(srcA))
	v.Close() // the writer is done with the batcher
	// Each packet's unit: its video frame (timestamp), or the audio group
	// (a muxer's PES, bus message) of its source frame.
	type unit struct {
		video bool
		id    uint32
	}
	units := make([]unit, len(pkts))
	group, ia := uint32(0), 0
	for i, p := range pkts {
		if p.hdr.PayloadType == fakePTVideo {
			units[i] = unit{true, p.hdr.Timestamp}
			continue
		}
		units[i] = unit{false, group}
		if !srcA[ia].More {
			group++
		}
		ia++
	}
	var want []int // packets of each multi-packet frame or audio group, in order
	for i := 0; i < len(units); {
		j := i
		for j < len(units) && units[j] == units[i] {
			j++
		}
		if j-i > 1 {
			want = append(want, j-i)
		}
		i = j
	}
	if sb.bad != "" || sb.open {
		t.Fatalf("batcher misused: %q, open %v", sb.bad, sb.open)
	}
	if len(want) == 0 || !slices.Equal(sb.spans, want) {
		t.Fatalf("batches of %v packets, want one per multi-packet frame and audio group: %v", sb.spans, want)
	}
}
