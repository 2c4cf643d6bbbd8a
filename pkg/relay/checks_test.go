package relay

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// nalsOf returns the NAL units of an Annex-B access unit as an RTP receiver
// gets them: without access unit delimiters and filler data.
func nalsOf(t testing.TB, au []byte) [][]byte {
	t.Helper()
	var a h264.AnnexB
	if err := a.Unmarshal(au); err != nil {
		t.Fatalf("annex-b: %v", err)
	}
	var out [][]byte
	for _, n := range a {
		if typ := h264.NALUType(n[0] & 0x1f); typ == h264.NALUTypeAccessUnitDelimiter || typ == h264.NALUTypeFillerData {
			continue
		}
		out = append(out, n)
	}
	return out
}

// rxAU is an access unit reassembled from RTP.
type rxAU struct {
	ts       uint32
	firstSeq uint16
	nals     [][]byte
	at       int // index of its first packet
}

// depacketizeH264 reassembles access units from video packets in sending
// order with pion's depacketizer; the marker bit ends an access unit. It
// fails on a sequence gap or a timestamp change inside an access unit.
func depacketizeH264(t testing.TB, pkts []sent) []rxAU {
	t.Helper()
	var (
		out  []rxAU
		cur  *rxAU
		dep  codecs.H264Packet
		buf  []byte
		prev uint16
	)
	for i, p := range pkts {
		if i > 0 && p.hdr.SequenceNumber != prev+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.hdr.SequenceNumber, prev)
		}
		prev = p.hdr.SequenceNumber
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
			var a h264.AnnexB
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

// sameNALs reports the first difference between two NAL unit lists.
func sameNALs(want, got [][]byte) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d NAL units, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			return fmt.Errorf("NAL unit %d (type %d) differs: %d bytes, want %d", i, want[i][0]&0x1f, len(got[i]), len(want[i]))
		}
	}
	return nil
}

// splitKinds separates the packets a viewer got by payload type.
func splitKinds(pkts []sent) (video, audio []sent) {
	for _, p := range pkts {
		switch p.hdr.PayloadType {
		case fakePTVideo:
			video = append(video, p)
		case fakePTAudio:
			audio = append(audio, p)
		}
	}
	return video, audio
}

// framesOf returns the video and audio frames of fixture events.
func framesOf(events []event) (video, audio []tsframes.Frame) {
	for _, e := range events {
		if e.frame == nil {
			continue
		}
		switch e.frame.Codec {
		case tsframes.CodecH264:
			video = append(video, *e.frame)
		case tsframes.CodecOpus:
			audio = append(audio, *e.frame)
		}
	}
	return video, audio
}

// checkVideo checks that aus are exactly the source frames src (NAL by NAL,
// in order) with RTP timestamp deltas equal to the PTS deltas.
func checkVideo(t testing.TB, src []tsframes.Frame, aus []rxAU) {
	t.Helper()
	if len(aus) != len(src) {
		t.Fatalf("got %d access units, want %d", len(aus), len(src))
	}
	for i := range src {
		if err := sameNALs(nalsOf(t, src[i].Data), aus[i].nals); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if i > 0 {
			if got, want := aus[i].ts-aus[i-1].ts, uint32(src[i].PTS-src[i-1].PTS); got != want {
				t.Fatalf("access unit %d: RTP ts delta %d, want PTS delta %d", i, got, want)
			}
		}
	}
}

// checkAudio checks that pkts are exactly the Opus packets src, in order,
// with contiguous sequence numbers and RTP timestamp deltas equal to the
// packet durations at 48 kHz.
func checkAudio(t testing.TB, src []tsframes.Frame, pkts []sent) {
	t.Helper()
	if len(pkts) != len(src) {
		t.Fatalf("got %d audio packets, want %d", len(pkts), len(src))
	}
	for i := range src {
		if !bytes.Equal(pkts[i].payload, src[i].Data) {
			t.Fatalf("audio packet %d differs", i)
		}
		if i > 0 {
			if pkts[i].hdr.SequenceNumber != pkts[i-1].hdr.SequenceNumber+1 {
				t.Fatalf("audio packet %d: seq %d after %d", i, pkts[i].hdr.SequenceNumber, pkts[i-1].hdr.SequenceNumber)
			}
			if got, want := pkts[i].hdr.Timestamp-pkts[i-1].hdr.Timestamp, uint32(src[i-1].Duration*48000/90000); got != want {
				t.Fatalf("audio packet %d: RTP ts delta %d, want duration %d", i, got, want)
			}
		}
	}
}
