package relay

import (
	"reflect"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// frameAt builds a one-packet-per-payload frame at stream seq first.
func frameAt(first uint64, ts uint32, key bool, gopIndex, packets int) *frame {
	payloads := make([][]byte, packets)
	for i := range payloads {
		payloads[i] = []byte{0x41, byte(first), byte(i)}
	}
	return newFrame(true, key, ts, gopIndex, first, payloads, true)
}

func newTestWriter(t testing.TB, rec webrtc.TrackLocalWriter, buf *retransmitBuffer) *trackWriter {
	tr := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(""), "w")
	bind(t, tr, ssrcVideo, rec)
	return newTrackWriter(tr, buf, videoClockRate)
}

func TestTrackWriterSegments(t *testing.T) {
	rec := newRecorder()
	buf := newRetransmitBuffer(64)
	w := newTestWriter(t, rec, buf)
	// Stream seqs 0-5, then a skip (frames 6-9 dropped), then 10-13.
	frames := []*frame{frameAt(0, 0, true, 0, 3), frameAt(3, 3000, false, 1, 3), frameAt(10, 12000, true, 0, 4)}
	for _, f := range frames {
		buf.put(f)
		if !w.write(f) {
			t.Fatal("not written")
		}
	}
	pkts := rec.snapshot()
	if len(pkts) != 10 {
		t.Fatalf("%d packets", len(pkts))
	}
	for i := 1; i < len(pkts); i++ {
		if pkts[i].hdr.SequenceNumber != pkts[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d: the skip shows", i, pkts[i].hdr.SequenceNumber, pkts[i-1].hdr.SequenceNumber)
		}
	}
	if d := pkts[6].hdr.Timestamp - pkts[0].hdr.Timestamp; d != 12000 {
		t.Fatalf("ts after the skip advanced %d, want 12000", d)
	}
	// Every viewer seq maps back to its stream seq, across the skip.
	want := []uint64{0, 1, 2, 3, 4, 5, 10, 11, 12, 13}
	for i, p := range pkts {
		s, ok := w.streamSeq(p.hdr.SequenceNumber)
		if !ok || s != want[i] {
			t.Fatalf("viewer seq %d -> stream %d (%v), want %d", p.hdr.SequenceNumber, s, ok, want[i])
		}
	}
	// Sequence numbers never sent do not map.
	last := pkts[len(pkts)-1].hdr.SequenceNumber
	for _, s := range []uint16{last + 1, last + 1000, pkts[0].hdr.SequenceNumber - 1} {
		if got, ok := w.streamSeq(s); ok {
			t.Fatalf("viewer seq %d mapped to %d", s, got)
		}
	}
	// Retransmission resends the identical packet.
	const gap = 50 * time.Millisecond
	now := int64(time.Second)
	if !w.retransmit(pkts[7].hdr.SequenceNumber, now, gap) {
		t.Fatal("retransmit failed")
	}
	got := rec.snapshot()[10]
	if !reflect.DeepEqual(got.hdr, pkts[7].hdr) || &got.payload[0] != &pkts[7].payload[0] {
		t.Fatalf("retransmission %+v, want %+v", got.hdr, pkts[7].hdr)
	}
	// Asked again within the gap: not resent; after it: resent; then not
	// beyond MaxResends. Another packet is not affected.
	seq := pkts[7].hdr.SequenceNumber
	steps := []struct {
		at   int64
		sent bool
	}{{now + int64(gap) - 1, false}, {now + int64(gap), true}, {now + 10*int64(gap), false}, {now + 100*int64(gap), false}}
	for i, st := range steps {
		if got := w.retransmit(seq, st.at, gap); got != st.sent {
			t.Fatalf("step %d: resent %v, want %v", i, got, st.sent)
		}
	}
	if !w.retransmit(pkts[8].hdr.SequenceNumber, now, gap) {
		t.Fatal("another packet was not resent")
	}
	if st := w.stats(); st.Retransmits != MaxResends+1 || st.Suppressed != 3 || st.Missed != 0 || len(rec.snapshot()) != 10+MaxResends+1 {
		t.Fatalf("stats %+v after %d packets", st, len(rec.snapshot()))
	}
}

func TestTrackWriterReplayTimestamps(t *testing.T) {
	for _, gap := range []uint32{0, 1000} {
		rec := newRecorder()
		buf := newRetransmitBuffer(64)
		w := newTestWriter(t, rec, buf)
		gop := []*frame{frameAt(0, 90000, true, 0, 2), frameAt(2, 93000, false, 1, 1), frameAt(3, 96000, false, 2, 1)}
		paced := frameAt(4, 99000, false, 3, 1) // live, sent at the replay's pace
		live := frameAt(5, 102000, false, 4, 1)
		w.setReplay(gop, 4, gap)
		for _, f := range gop {
			buf.put(f)
			w.write(f)
		}
		buf.put(paced)
		w.extendReplay(paced)
		w.write(paced)
		w.endReplay(paced)
		buf.put(live)
		w.write(live)
		// The keyframe at the live edge (the GOP's last frame, 96000);
		// after the gap, the catch-up advances by a quarter of the media
		// time; the live feed continues it.
		pkts := rec.snapshot()
		top := pkts[0].hdr.Timestamp
		for i, want := range []uint32{top, top, top + gap + 750, top + gap + 1500, top + gap + 2250, top + gap + 2250 + 3000} {
			if pkts[i].hdr.Timestamp != want {
				t.Fatalf("gap %d: packet %d: ts %d, want %d", gap, i, pkts[i].hdr.Timestamp, want)
			}
		}
		if got := top - w.tsOff; got != 96000 {
			t.Fatalf("keyframe sent with the stream timestamp %d, want the live edge 96000", got)
		}
		// A retransmitted packet of the catch-up keeps its timestamp.
		w.retransmit(pkts[2].hdr.SequenceNumber, 0, minResendGap)
		if got := rec.snapshot()[6]; got.hdr.Timestamp != top+gap+750 {
			t.Fatalf("gap %d: retransmitted replay packet ts %d, want %d", gap, got.hdr.Timestamp, top+gap+750)
		}
	}
}

func TestTrackWriterUnbound(t *testing.T) {
	tr := newTrack(webrtc.RTPCodecTypeVideo, h264Capability(""), "w")
	w := newTrackWriter(tr, newRetransmitBuffer(16), videoClockRate)
	if w.write(frameAt(0, 0, true, 0, 1)) {
		t.Fatal("written without a binding")
	}
	rec := newRecorder()
	ctx := &trackContext{id: "a", ssrc: 5, codecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: h264Capability(""), PayloadType: 100}}, ws: rec}
	if _, err := tr.Bind(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Unbind(ctx); err != nil {
		t.Fatal(err)
	}
	if w.write(frameAt(1, 0, true, 0, 1)) || len(rec.snapshot()) != 0 {
		t.Fatal("written after Unbind")
	}
}

// The per-viewer path allocates nothing: queueing a frame, rewriting and
// writing its packets, answering a NACK (on the track's SSRC, and on RTX).
func TestViewerPathAllocationFree(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		c := newCounter()
		buf := newRetransmitBuffer(4096)
		w := newTestWriter(t, c, buf)
		if rtx {
			w = newRTXTestWriter(t, c, buf)
		}
		f := frameAt(0, 0, true, 0, 5)
		buf.put(f)
		v := &Viewer{video: w, queue: make(chan *frame, 1)}
		seq := uint64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			for j := range f.pkts {
				f.pkts[j].seq = seq
				seq++
			}
			buf.put(f)
			v.offerLocked(f)
			w.write(<-v.queue)
			w.retransmit(w.lastSeq, int64(seq)*int64(time.Second), minResendGap)
		})
		if allocs != 0 {
			t.Fatalf("rtx %v: %.1f allocations per frame on the per-viewer path", rtx, allocs)
		}
		if rtx && w.retransmits.Load() == 0 {
			t.Fatal("nothing retransmitted on RTX")
		}
	}
}
