package tsframes

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// FuzzDemuxer runs the Demuxer over arbitrary bytes: it must end, never
// panic, and whatever it emits must keep the contract (announcement first,
// keyframes with SPS and PPS before the IDR, audio with a duration, stats
// matching the calls).
//
// The committed corpus (testdata/fuzz/FuzzDemuxer) holds small slices of the
// fixtures (the start of av.ts and aac.ts, a mid-packet cut of av.ts, the PMT
// change of pmtchange.ts, a truncated head), noise, fake packets and
// synthetic streams; the synthetic streams of the tests are added here.
//
// Run it with a bounded minimization, as scripts/test.sh does:
//
//	go test -run '^$' -fuzz '^FuzzDemuxer$' -fuzzminimizetime 100x ./pkg/tsframes/
//
// Without it the fuzzer spends up to 60 s (-fuzzminimizetime's default)
// shrinking every new interesting input; its byte-subset step is quadratic
// in the input's size, so on streams of a few kilobytes it never finishes
// and runs a handful of inputs per minute instead of thousands per second.
func FuzzDemuxer(f *testing.F) {
	for _, seed := range syntheticSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Read whole, and a packet's size at a time (as from a live input:
		// aligned packets are demuxed before the byte after them is read).
		for _, r := range []io.Reader{bytes.NewReader(b), packetReads{bytes.NewReader(b)}} {
			c := &fuzzHandler{t: t, tracks: map[uint16]Track{}}
			d := NewDemuxer(r, Options{})
			ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
			err := d.Run(ctx, c)
			cancel()
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			st := d.Stats()
			if st.Bytes != uint64(len(b)) || st.Frames != c.frames || st.Keyframes != c.keyframes || st.AudioPackets != c.audio {
				t.Fatalf("stats %+v for %d bytes, %d frames, %d keyframes, %d audio", st, len(b), c.frames, c.keyframes, c.audio)
			}
		}
	})
}

// packetReads reads at most one packet's size at a time.
type packetReads struct{ r io.Reader }

func (p packetReads) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), packetSize)]) }

type fuzzHandler struct {
	t                        *testing.T
	tracks                   map[uint16]Track
	frames, keyframes, audio uint64
}

func (h *fuzzHandler) Tracks(a Announcement) error {
	h.tracks = map[uint16]Track{}
	for _, tr := range a.Tracks {
		if tr.WebRTC != (tr.Codec == CodecH264 || tr.Codec == CodecOpus) {
			h.t.Fatalf("track %+v: WebRTC flag", tr)
		}
		if tr.ProfileLevelID != "" && (tr.Codec != CodecH264 || len(tr.ProfileLevelID) != 6) {
			h.t.Fatalf("track %+v: profile-level-id", tr)
		}
		h.tracks[tr.PID] = tr
	}
	return nil
}

func (h *fuzzHandler) Frame(f Frame) error {
	h.frames++
	tr, ok := h.tracks[f.PID]
	if !ok || tr.Codec != f.Codec || !tr.WebRTC {
		h.t.Fatalf("frame of PID %d (%s) not announced as such: %+v", f.PID, f.Codec, tr)
	}
	if len(f.Data) == 0 {
		h.t.Fatalf("empty frame")
	}
	switch f.Kind {
	case KindAudio:
		h.audio++
		if f.Duration <= 0 || f.PTS != f.DTS || f.Key {
			h.t.Fatalf("audio frame %+v", f)
		}
	case KindVideo:
		if f.Key {
			h.keyframes++
		}
		// The Demuxer writes each NAL unit after 00 00 00 01 and NAL units
		// never contain 00 00 01, so this split is exact.
		if !bytes.HasPrefix(f.Data, []byte{0, 0, 0, 1}) {
			h.t.Fatalf("video frame without a leading start code")
		}
		sps, pps, idr := false, false, false
		for _, n := range bytes.Split(f.Data[4:], []byte{0, 0, 0, 1}) {
			if len(n) == 0 {
				h.t.Fatalf("empty NAL unit")
			}
			switch n[0] & 0x1F {
			case 7:
				sps = true
			case 8:
				pps = pps || sps
			case 9:
				h.t.Fatalf("AUD in a frame")
			case 5:
				if !idr && !(sps && pps) {
					h.t.Fatalf("IDR without SPS and PPS before it")
				}
				idr = true
			}
		}
		if idr != f.Key {
			h.t.Fatalf("Key=%v with IDR=%v", f.Key, idr)
		}
	default:
		h.t.Fatalf("frame of kind %q", f.Kind)
	}
	return nil
}

// syntheticSeeds are small streams written with mediacommon's writer: Opus
// PES with several packets, H.264 without repeated SPS/PPS, a PTS wrap.
func syntheticSeeds(tb testing.TB) [][]byte {
	v, a := videoTrack(), opusTrack()
	tw := newTSWriter(tb, v, a)
	tw.h264(v, tsPeriod-6000, testSPS, testPPS, testIDR)
	tw.opus(a, tsPeriod-6000, opusPacket20ms, opusPacket10ms, opusPacket60ms)
	tw.h264(v, tsPeriod-3000, testP)
	tw.h264(v, 0, testSEI, testIDR)
	tw.opus(a, 1200, opusPacket2_5ms, opusPacket40ms, []byte{}, opusPacketTwice)
	tw.h264(v, 3000, testSPS2, testPPS2, testIDR)
	tw.h264(v, 6000, testP)
	av := tw.buf.Bytes()

	o := opusTrack()
	ow := newTSWriter(tb, o)
	ow.opus(o, 90000, opusPacket20ms, opusPacket20ms, opusPacket20ms)
	ow.opus(o, 95400, opusPacket60ms)
	return [][]byte{av, ow.buf.Bytes(), pesSeed()}
}

// pesSeed is a hand-made stream for the PES assembler: a video PES without
// PES_packet_length, an Opus PES over three packets with one repeated, a
// PES shorter than its length, a PES with PTS and DTS, and a PMT change
// inside an Opus PES.
func pesSeed() []byte {
	cc := map[uint16]*byte{256: new(byte), 257: new(byte)}
	var out [][]byte
	add := func(p uint16, pes []byte) [][]byte {
		pkts := tsPackets(p, cc[p], pes)
		out = append(out, pkts...)
		return pkts
	}
	out = append(out, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
	out = append(out, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...)
	idr := pesWithPTS(0xE0, 90000, -1, annexB(testSPS, testPPS, testIDR))
	setPESLength(idr, 0)
	add(256, idr)
	long := append(opusAU(randomNALU(0xf8, 250, 1)), opusAU(randomNALU(0xf0, 250, 2))...)
	p := add(257, pesWithPTS(0xC0, 90000, -1, long))
	out = append(out[:len(out)-1], p[1], p[2])
	short := pesWithPTS(0xC0, 93600, -1, opusAU(opusPacket20ms))
	setPESLength(short, len(short)+20)
	add(257, short)
	add(256, pesWithPTS(0xE0, 99000, 93000, annexB(testP)))
	p = add(257, pesWithPTS(0xC0, 95400, -1, long))
	out = append(out[:len(out)-2], sectionPackets(0x1000, 1, pmtSection(1, 0, esVideo))...)
	out = append(out, p[1], p[2])
	add(256, pesWithPTS(0xE0, 96000, -1, annexB(testIDR)))
	return bytes.Join(out, nil)
}
