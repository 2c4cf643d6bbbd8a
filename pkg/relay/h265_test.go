package relay

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// h265Frames returns the H.265 video frames of fixture events.
func h265Frames(events []event) []tsframes.Frame {
	var out []tsframes.Frame
	for _, e := range events {
		if e.frame != nil && e.frame.Codec == tsframes.CodecH265 {
			out = append(out, *e.frame)
		}
	}
	return out
}

// depacketizeH265AUs reassembles H.265 access units from video packets in
// sending order with pion's depacketizer; the marker bit ends an access
// unit. It fails on a sequence gap or a timestamp change inside an access
// unit.
func depacketizeH265AUs(t testing.TB, pkts []sent) []rxAU {
	t.Helper()
	var (
		out []rxAU
		cur *rxAU
		dep codecs.H265Depacketizer
		buf []byte
	)
	for i, p := range pkts {
		if i > 0 && p.hdr.SequenceNumber != pkts[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.hdr.SequenceNumber, pkts[i-1].hdr.SequenceNumber)
		}
		if cur == nil {
			out = append(out, rxAU{ts: p.hdr.Timestamp, firstSeq: p.hdr.SequenceNumber, at: i})
			cur = &out[len(out)-1]
			buf = buf[:0]
		} else if p.hdr.Timestamp != cur.ts {
			t.Fatalf("packet %d: timestamp %d inside access unit of %d", i, p.hdr.Timestamp, cur.ts)
		}
		b, err := dep.Unmarshal(p.payload)
		if err != nil {
			t.Fatalf("packet %d: depacketize: %v", i, err)
		}
		buf = append(buf, b...)
		if p.hdr.Marker {
			var a h264.AnnexB // the byte stream format is H.264's
			if err := a.Unmarshal(buf); err != nil {
				t.Fatalf("access unit at packet %d: %v", cur.at, err)
			}
			for _, n := range a {
				cur.nals = append(cur.nals, bytes.Clone(n))
			}
			cur = nil
		}
	}
	if cur != nil {
		out = out[:len(out)-1] // incomplete last access unit
	}
	return out
}

// checkH265 checks that aus are src[k:k+len(aus)], byte for byte, with RTP
// timestamp deltas equal to the PTS deltas.
func checkH265(t testing.TB, src []tsframes.Frame, k int, aus []rxAU) {
	t.Helper()
	if k+len(aus) > len(src) {
		t.Fatalf("%d access units from source frame %d, the source has %d", len(aus), k, len(src))
	}
	for i := range aus {
		var want h264.AnnexB
		if err := want.Unmarshal(src[k+i].Data); err != nil {
			t.Fatal(err)
		}
		if err := sameNALs(want, aus[i].nals); err != nil {
			t.Fatalf("access unit %d (source frame %d): %v", i, k+i, err)
		}
		if i > 0 {
			if got, want := aus[i].ts-aus[i-1].ts, uint32(src[k+i].PTS-src[k+i-1].PTS); got != want {
				t.Fatalf("access unit %d: RTP ts delta %d, want PTS delta %d", i, got, want)
			}
		}
	}
}

// TestBusPeerConnectionH265: a viewer that wants H.265 video of an H.265
// stream (hevc.ts, published on the bus) gets every access unit byte for
// byte through a real PeerConnection, and a NACKed packet again on the RTX
// stream (pion's default codecs offer H.265 with its RTX), from the
// stream's retransmission buffer.
func TestBusPeerConnectionH265(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "hevc.ts")
	src := h265Frames(events)
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "hevc", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("hevc", 1, events)
	if v, h265 := VideoTracks(ann); v != nil || h265 == nil || h265.ProfileID != 1 {
		t.Fatalf("video tracks %+v %+v, want H.265 Main only", v, h265)
	}
	v, err := r.Join(waitCtx(t, 10*time.Second), ann, Want{Video: true, Audio: true, VideoCodec: tsframes.CodecH265})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p := connectPeer(t, v, ann)
	v.Start()
	done := feed{events: events, speed: 1}.start(t, pub)

	// A NACK while the stream plays is answered on the RTX stream.
	early := p.video.waitFor(t, 10*time.Second, "20 access units", func(s []sent) bool { return countMarkers(s) >= 20 })
	want := early[7]
	p.nack(t, want.hdr.SSRC, want.hdr.SequenceNumber)
	p.repaired.waitFor(t, 10*time.Second, "the repair", func(s []sent) bool {
		for _, r := range s {
			if r.hdr.SequenceNumber == want.hdr.SequenceNumber {
				if r.hdr.Timestamp != want.hdr.Timestamp || !bytes.Equal(r.payload, want.payload) {
					t.Fatalf("repair ts %d payload %d bytes, want ts %d %d bytes", r.hdr.Timestamp, len(r.payload), want.hdr.Timestamp, len(want.payload))
				}
				return true
			}
		}
		return false
	})

	waitDone(t, done)
	video := p.video.waitFor(t, 10*time.Second, "every access unit", func(s []sent) bool { return countMarkers(s) >= len(src) })
	// The repair is recorded with the media (replay protection is off):
	// leave it out.
	var media []sent
	seen := map[uint16]bool{}
	for _, s := range video {
		if !seen[s.hdr.SequenceNumber] {
			seen[s.hdr.SequenceNumber] = true
			media = append(media, s)
		}
	}
	checkH265(t, src, 0, depacketizeH265AUs(t, media))
	eventually(t, 10*time.Second, "the frames counted", func() bool { return v.Stats().Video.Frames == uint64(len(src)) })
	if st := v.Stats(); st.Video.Retransmits != 1 || st.Video.NACKs != 1 {
		t.Fatalf("stats %+v", st.Video)
	}
}

// TestTimeShiftH265: a time-shifted viewer that wants H.265 video reads the
// stream's log from its first keyframe and gets every H.265 access unit
// once, in order, then ends with the log (ErrStreamEnded), only once the
// last one was written.
func TestTimeShiftH265(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "hevc.ts")
	src := h265Frames(events)
	nc := natstest.EmbeddedConn(t)
	pub := newPublisher(t, nc, "dvr265", 1)
	r := newBusRelay(t, Config{Conn: nc})
	ann := busAnnouncement("dvr265", 1, events)
	began := time.Now()
	waitDone(t, feed{events: events, speed: 4}.start(t, pub)) // stored over 1 s
	// The stream ends: its publisher waits until JetStream has stored every
	// message (Publish does not), then marks it ended in the catalog.
	if err := pub.Shutdown(waitCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	v, err := r.JoinAt(waitCtx(t, 10*time.Second), ann, Want{Video: true, VideoCodec: tsframes.CodecH265}, began.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
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
	// Every access unit was written before the viewer ended; the peer may
	// receive the last ones a little later.
	if st := v.Stats(); st.Video.Frames != uint64(len(src)) || st.Video.Drops != 0 {
		t.Fatalf("video stats at the end %+v, want %d frames written, no drops", st.Video, len(src))
	}
	video := p.video.waitFor(t, 10*time.Second, "every access unit", func(s []sent) bool { return countMarkers(s) >= len(src) })
	aus := depacketizeH265AUs(t, video)
	if len(aus) != len(src) {
		t.Fatalf("%d access units, want %d", len(aus), len(src))
	}
	for i := range aus {
		var want h264.AnnexB
		if err := want.Unmarshal(src[i].Data); err != nil {
			t.Fatal(err)
		}
		if err := sameNALs(want, aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if i > 0 && int32(aus[i].ts-aus[i-1].ts) <= 0 {
			t.Fatalf("access unit %d: RTP ts %d after %d", i, aus[i].ts, aus[i-1].ts)
		}
	}
}
