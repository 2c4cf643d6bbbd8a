package tsframes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// TestPESTooLarge: a PES over the limit is dropped and counted; the next
// one comes out intact. The limit is lowered to 64 KiB here, to test it
// around a small PES; TestPESTooLargeDefault uses MaxPESSize.
func TestPESTooLarge(t *testing.T) {
	const limit = 64 << 10
	v := videoTrack()
	tw := newTSWriter(t, v)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	big := bytes.Repeat([]byte{0xab}, limit-1000)
	big[0] = 0x41
	tw.h264(v, 93000, big) // fits
	huge := bytes.Repeat([]byte{0xab}, limit+1000)
	huge[0] = 0x41
	tw.h264(v, 96000, huge)
	tw.h264(v, 99000, testP)
	tw.h264(v, 102000, testIDR)

	var res result
	res.collector = &collector{t: t}
	d := NewDemuxer(bytes.NewReader(tw.buf.Bytes()), Options{OnDecodeError: func(err error) { res.errors = append(res.errors, err) }})
	d.maxPES = limit
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	if err := d.Run(ctx, res.collector); err != nil {
		t.Fatal(err)
	}
	if res.errorsIs(ErrPESTooLarge) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrPESTooLarge", res.errors)
	}
	want := []Frame{
		{PTS: 90000, Data: annexB(testSPS, testPPS, testIDR)},
		{PTS: 93000, Data: annexB(big)},
		{PTS: 99000, Data: annexB(testP)},
		{PTS: 102000, Data: annexB(testSPS, testPPS, testIDR)},
	}
	if len(res.frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(want))
	}
	for i, w := range want {
		if res.frames[i].PTS != w.PTS || !bytes.Equal(res.frames[i].Data, w.Data) {
			t.Errorf("frame %d: PTS %d, %d bytes; want PTS %d, %d bytes", i, res.frames[i].PTS, len(res.frames[i].Data), w.PTS, len(w.Data))
		}
	}
}

// TestMaxPESSize: the limit is mediacommon's access unit limit, which its
// Annex-B parser enforces anyway.
func TestMaxPESSize(t *testing.T) {
	if MaxPESSize != h264.MaxAccessUnitSize {
		t.Fatalf("MaxPESSize = %d, mediacommon's h264.MaxAccessUnitSize = %d", MaxPESSize, h264.MaxAccessUnitSize)
	}
}

// randomNALU returns a NAL unit of n bytes with the given header byte and
// a random body without zero bytes (so without start codes).
func randomNALU(header byte, n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	for i := range b {
		if b[i] == 0 {
			b[i] = 1
		}
	}
	b[0] = header
	return b
}

// largeAUStream is SPS+PPS+IDR(size bytes), an Opus packet, then two P
// frames.
func largeAUStream(tb testing.TB, size int) (stream, idr []byte) {
	v, a := videoTrack(), opusTrack()
	tw := newTSWriter(tb, v, a)
	idr = randomNALU(0x65, size, 1)
	tw.h264(v, 90000, testSPS, testPPS, idr)
	tw.opus(a, 90000, opusPacket20ms)
	tw.h264(v, 93000, testP)
	tw.h264(v, 96000, testP)
	return tw.buf.Bytes(), idr
}

// TestLargeAccessUnit: a 6 MiB access unit (a 4K keyframe) comes out whole,
// byte for byte. (BenchmarkDemuxLargeAU times it.)
func TestLargeAccessUnit(t *testing.T) {
	stream, idr := largeAUStream(t, 6<<20)
	res := demuxBytes(t, stream)
	if res.err != nil || len(res.errors) != 0 {
		t.Fatalf("Run: %v, decode errors %v", res.err, res.errors)
	}
	video, audio := res.video(), res.audio()
	if len(video) != 3 || len(audio) != 1 {
		t.Fatalf("%d video and %d audio frames, want 3 and 1", len(video), len(audio))
	}
	if f := video[0]; f.PTS != 90000 || !f.Key || !bytes.Equal(f.Data, annexB(testSPS, testPPS, idr)) {
		t.Errorf("large keyframe: PTS %d, key %v, %d bytes; want PTS 90000, a keyframe of %d bytes",
			f.PTS, f.Key, len(f.Data), len(annexB(testSPS, testPPS, idr)))
	}
	for i, pts := range []int64{93000, 96000} {
		if f := video[i+1]; f.PTS != pts || !bytes.Equal(f.Data, annexB(testP)) {
			t.Errorf("video %d: PTS %d, % x", i+1, f.PTS, f.Data)
		}
	}
	if f := audio[0]; f.PTS != 90000 || !bytes.Equal(f.Data, opusPacket20ms) {
		t.Errorf("audio: PTS %d, % x", f.PTS, f.Data)
	}
}

// TestPESTooLargeDefault: with the real limit, an access unit over
// MaxPESSize is dropped and counted, and the next ones come out intact.
func TestPESTooLargeDefault(t *testing.T) {
	v := videoTrack()
	tw := newTSWriter(t, v)
	tw.h264(v, 90000, testSPS, testPPS, testIDR)
	tw.h264(v, 93000, randomNALU(0x41, MaxPESSize+1000, 2))
	tw.h264(v, 96000, testP)
	tw.h264(v, 99000, testP)
	res := demuxBytes(t, tw.buf.Bytes())
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrPESTooLarge) != 1 || len(res.errors) != 1 || res.stats.DecodeErrors != 1 {
		t.Errorf("decode errors %v (%d counted), want one ErrPESTooLarge", res.errors, res.stats.DecodeErrors)
	}
	want := []Frame{
		{PTS: 90000, Data: annexB(testSPS, testPPS, testIDR)},
		{PTS: 96000, Data: annexB(testP)},
		{PTS: 99000, Data: annexB(testP)},
	}
	if len(res.frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(want))
	}
	for i, w := range want {
		if res.frames[i].PTS != w.PTS || !bytes.Equal(res.frames[i].Data, w.Data) {
			t.Errorf("frame %d: PTS %d, %d bytes; want PTS %d, %d bytes", i, res.frames[i].PTS, len(res.frames[i].Data), w.PTS, len(w.Data))
		}
	}
}

// bareSpan is a program span over one H.264 stream (PID 256) of an announced
// track, for feeding packets to route directly.
func bareSpan(t *testing.T, maxPES int) (*programSpan, *result) {
	res := &result{collector: &collector{t: t}}
	bad := func(err error) { res.errors = append(res.errors, err) }
	in := &input{psi: newPSITracker(), stats: &counters{}, bad: bad, maxPES: maxPES}
	in.resetContinuity()
	s := &programSpan{in: in, ann: newAnnouncer(res.collector, in.stats, bad)}
	s.addStream(256, CodecH264)
	if err := s.ann.setTracks([]Track{{PID: 256, Kind: KindVideo, Codec: CodecH264, WebRTC: true}}); err != nil {
		t.Fatal(err)
	}
	return s, res
}

// TestPESBufferBounded: the buffer of a PES that grows beyond the limit
// never holds more than the limit; it is reused, not reallocated, for the
// PES that follow. (The limit is 1 MiB here, to keep the test fast under
// the race detector; the code does not depend on its value.)
func TestPESBufferBounded(t *testing.T) {
	const limit = 1 << 20
	v := videoTrack()
	tw := newTSWriter(t, v)
	tw.h264(v, 90000, testSPS, testPPS, randomNALU(0x65, limit-1000, 3))
	tw.h264(v, 93000, randomNALU(0x41, 3*limit, 4))
	tw.h264(v, 96000, testP)
	tw.h264(v, 99000, testP)

	s, res := bareSpan(t, limit)
	st := s.stream(256)
	var first *byte
	for i, pkt := range packetsOf(tw.buf.Bytes()) {
		if pid(pkt) != 256 {
			continue
		}
		if err := s.route(pkt); err != nil {
			t.Fatal(err)
		}
		if cap(st.buf) > limit {
			t.Fatalf("packet %d: PES buffer of %d bytes, over the limit", i, cap(st.buf))
		}
		if first == nil && cap(st.buf) == limit {
			first = &st.buf[:1][0]
		}
	}
	if err := s.end(false); err != nil {
		t.Fatal(err)
	}
	if first == nil || &st.buf[:1][0] != first {
		t.Error("the PES buffer was not reused")
	}
	if res.errorsIs(ErrPESTooLarge) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrPESTooLarge", res.errors)
	}
	if len(res.frames) != 3 || res.frames[0].PTS != 90000 || res.frames[1].PTS != 96000 || res.frames[2].PTS != 99000 {
		t.Errorf("%d frames, want those at 90000, 96000, 99000", len(res.frames))
	}
}

// tsPackets carries payload in packets of pid, the first with
// payload_unit_start_indicator, the last filled with adaptation field
// stuffing; cc is the PID's continuity counter.
func tsPackets(pid uint16, cc *byte, payload []byte) [][]byte {
	var out [][]byte
	for first := true; first || len(payload) > 0; first = false {
		pkt := bytes.Repeat([]byte{0xFF}, packetSize)
		pkt[0] = syncByte
		pkt[1] = byte(pid>>8) & 0x1F
		if first {
			pkt[1] |= 0x40
		}
		pkt[2] = byte(pid)
		n := min(len(payload), packetSize-4)
		pos := 4
		pkt[3] = 0x10 | *cc&0x0F
		if n < packetSize-4 {
			af := packetSize - 4 - 1 - n // adaptation field bytes after its length
			pkt[3] |= 0x20
			pkt[4] = byte(af)
			if af > 0 {
				pkt[5] = 0 // no flags
			}
			pos += 1 + af
		}
		copy(pkt[pos:], payload[:n])
		payload = payload[n:]
		*cc++
		out = append(out, pkt)
	}
	return out
}

// encodePESClock encodes a 33-bit PTS/DTS with its 4-bit prefix.
func encodePESClock(prefix byte, v int64) []byte {
	return []byte{prefix<<4 | byte(v>>29)&0x0E | 1, byte(v >> 22), byte(v>>14)&0xFE | 1, byte(v >> 7), byte(v<<1) | 1}
}

// pesWithPTS builds a PES with a PTS (and a DTS when dts >= 0) and a
// correct PES_packet_length.
func pesWithPTS(streamID byte, pts, dts int64, data []byte) []byte {
	var hdr []byte
	flags := byte(0x80)
	if dts < 0 {
		hdr = encodePESClock(2, pts)
	} else {
		flags = 0xC0
		hdr = append(encodePESClock(3, pts), encodePESClock(1, dts)...)
	}
	return pesRaw(streamID, flags, hdr, data)
}

// pesRaw builds a PES with an optional header of the given PTS_DTS_flags
// byte and header fields, and a correct PES_packet_length.
func pesRaw(streamID, flags byte, hdr, data []byte) []byte {
	b := []byte{0, 0, 1, streamID, 0, 0, 0x80, flags, byte(len(hdr))}
	b = append(append(b, hdr...), data...)
	setPESLength(b, len(b)-6)
	return b
}

func setPESLength(pes []byte, l int) { pes[4], pes[5] = byte(l>>8), byte(l) }

// opusAU wraps an Opus packet (under 255 bytes) in an opus_access_unit.
func opusAU(pkt []byte) []byte {
	return append([]byte{0x7F, 0xE0, byte(len(pkt))}, pkt...)
}

// TestPESProblems: PES that are damaged in one way are dropped and counted
// (only they), repeated packets are ignored, and PES that are merely unusual
// come out right.
func TestPESProblems(t *testing.T) {
	const vPID, aPID = 256, 257
	type stream struct {
		cc   map[uint16]*byte
		pkts [][]byte
	}
	add := func(s *stream, pid uint16, pes []byte) [][]byte {
		if s.cc[pid] == nil {
			s.cc[pid] = new(byte)
		}
		p := tsPackets(pid, s.cc[pid], pes)
		s.pkts = append(s.pkts, p...)
		return p
	}
	audio := func(pts int64) []byte { return pesWithPTS(0xC0, pts, -1, opusAU(opusPacket20ms)) }
	video := func(pts int64, nalus ...[]byte) []byte { return pesWithPTS(0xE0, pts, -1, annexB(nalus...)) }
	// Two Opus packets of 250 bytes: a PES over 3 packets.
	long1, long2 := randomNALU(0xf8, 250, 5), randomNALU(0xf8, 250, 6)
	long := append(opusAU(long1), opusAU(long2)...)

	for _, tc := range []struct {
		name        string
		build       func(s *stream)
		audio       []int64 // PTS of the audio frames from the case
		audioData   [][]byte
		video       []int64 // of the video frames from the case
		err         error   // the decode error the case causes, if any
		videoFrames func(t *testing.T, frames []Frame)
	}{
		{name: "clean", build: func(s *stream) { add(s, aPID, audio(100000)) }, audio: []int64{100000}},
		{name: "PES_packet_length beyond its bytes", build: func(s *stream) {
			pes := audio(100000)
			setPESLength(pes, len(pes)-6+50)
			add(s, aPID, pes)
		}, err: ErrDemux},
		{name: "bytes after PES_packet_length", build: func(s *stream) {
			pes := audio(100000)
			add(s, aPID, append(pes, 0xFF, 0xFF, 0x47, 0x00)) // ignored
		}, audio: []int64{100000}},
		{name: "no PTS", build: func(s *stream) {
			add(s, aPID, pesRaw(0xC0, 0, nil, opusAU(opusPacket20ms)))
		}, err: ErrDemux},
		{name: "padding stream", build: func(s *stream) {
			pes := []byte{0, 0, 1, streamIDPadding, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}
			setPESLength(pes, len(pes)-6)
			add(s, aPID, pes)
		}, err: ErrDemux},
		{name: "header length beyond the PES", build: func(s *stream) {
			pes := audio(100000)
			pes[8] = 200
			add(s, aPID, pes)
		}, err: ErrDemux},
		{name: "header too short for the PTS", build: func(s *stream) {
			add(s, aPID, pesRaw(0xC0, 0x80, []byte{0x21, 0, 1}, opusAU(opusPacket20ms)))
		}, err: ErrDemux},
		{name: "start code missing", build: func(s *stream) {
			pes := audio(100000)
			pes[2] = 2
			add(s, aPID, pes)
		}, err: ErrDemux},
		{name: "Opus DTS differs", build: func(s *stream) {
			add(s, aPID, pesWithPTS(0xC0, 100000, 99000, opusAU(opusPacket20ms)))
		}, err: ErrDemux},
		{name: "invalid Opus access unit", build: func(s *stream) {
			add(s, aPID, pesWithPTS(0xC0, 100000, -1, []byte{0x12, 0x34, 0x56}))
		}, err: ErrDemux},
		{name: "Opus access unit longer than the PES", build: func(s *stream) {
			au := opusAU(opusPacket20ms)
			au[2] = 10
			add(s, aPID, pesWithPTS(0xC0, 100000, -1, au))
		}, err: ErrDemux},
		{name: "empty Opus PES", build: func(s *stream) {
			add(s, aPID, pesWithPTS(0xC0, 100000, -1, nil))
		}, err: ErrDemux},
		{name: "H.264 without a start code", build: func(s *stream) {
			add(s, vPID, pesWithPTS(0xE0, 93000, -1, testP))
		}, err: ErrDemux},
		{name: "H.264 with PTS and DTS, no PES_packet_length", build: func(s *stream) {
			pes := pesWithPTS(0xE0, 99000, 93000, annexB(testP))
			setPESLength(pes, 0)
			add(s, vPID, pes)
		}, video: []int64{99000}, videoFrames: func(t *testing.T, frames []Frame) {
			if f := frames[1]; f.PTS != 99000 || f.DTS != 93000 || !bytes.Equal(f.Data, annexB(testP)) {
				t.Errorf("frame %+v, want PTS 99000, DTS 93000", f)
			}
		}},
		{name: "three-packet PES", build: func(s *stream) {
			if p := add(s, aPID, pesWithPTS(0xC0, 100000, -1, long)); len(p) != 3 {
				t.Fatalf("%d packets", len(p))
			}
		}, audio: []int64{100000, 101800}, audioData: [][]byte{long1, long2}},
		{name: "repeated packet", build: func(s *stream) {
			p := add(s, aPID, pesWithPTS(0xC0, 100000, -1, long))
			s.pkts = append(s.pkts[:len(s.pkts)-1], p[1], p[2])
		}, audio: []int64{100000, 101800}, audioData: [][]byte{long1, long2}},
		{name: "repeated start packet", build: func(s *stream) {
			p := add(s, aPID, pesWithPTS(0xC0, 100000, -1, long))
			s.pkts = append(s.pkts[:len(s.pkts)-2], p[0], p[1], p[2])
		}, audio: []int64{100000, 101800}, audioData: [][]byte{long1, long2}},
		{name: "lost packet", build: func(s *stream) {
			p := add(s, aPID, pesWithPTS(0xC0, 100000, -1, long))
			s.pkts = append(s.pkts[:len(s.pkts)-2], p[2])
		}, err: ErrContinuity},
		{name: "discontinuity indicator", build: func(s *stream) {
			p := add(s, aPID, audio(100000))
			*s.cc[aPID] += 5
			p[0][3] = p[0][3]&0xF0 | (p[0][3]+5)&0x0F
			p[0][5] |= 0x80
		}, audio: []int64{100000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stream{cc: map[uint16]*byte{}}
			s.pkts = append(s.pkts, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
			s.pkts = append(s.pkts, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...)
			add(s, vPID, video(90000, testSPS, testPPS, testIDR))
			add(s, aPID, audio(90000))
			tc.build(s)
			add(s, aPID, audio(500000))
			add(s, vPID, video(600000, testP))
			res := demuxBytes(t, bytes.Join(s.pkts, nil))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if tc.err == nil && len(res.errors) != 0 || tc.err != nil && (len(res.errors) != 1 || res.errorsIs(tc.err) != 1) {
				t.Errorf("decode errors %v, want %v", res.errors, tc.err)
			}
			wantAudio := append(append([]int64{90000}, tc.audio...), 500000)
			wantVideo := append(append([]int64{90000}, tc.video...), 600000)
			a, v := res.audio(), res.video()
			if len(a) != len(wantAudio) || len(v) != len(wantVideo) {
				t.Fatalf("%d audio, %d video frames; want PTS %v and %v", len(a), len(v), wantAudio, wantVideo)
			}
			for i := range a {
				data := opusPacket20ms
				if i > 0 && i-1 < len(tc.audioData) {
					data = tc.audioData[i-1]
				}
				if a[i].PTS != wantAudio[i] || !bytes.Equal(a[i].Data, data) {
					t.Errorf("audio %d: PTS %d, % x", i, a[i].PTS, a[i].Data)
				}
			}
			for i := range v {
				if v[i].PTS != wantVideo[i] {
					t.Errorf("video %d: PTS %d, want %d", i, v[i].PTS, wantVideo[i])
				}
			}
			if tc.videoFrames != nil {
				tc.videoFrames(t, v)
			}
		})
	}
}

func TestParsePES(t *testing.T) {
	const big = int64(1)<<33 - 1
	pts, dts, data, err := parsePES(pesWithPTS(0xE0, big, 12345, []byte{9, 8, 7}))
	if err != nil || pts != big || dts != 12345 || !bytes.Equal(data, []byte{9, 8, 7}) {
		t.Errorf("PTS+DTS: %d %d % x %v", pts, dts, data, err)
	}
	pts, dts, data, err = parsePES(pesWithPTS(0xC0, 1<<32, -1, []byte{1}))
	if err != nil || pts != 1<<32 || dts != pts || !bytes.Equal(data, []byte{1}) {
		t.Errorf("PTS: %d %d % x %v", pts, dts, data, err)
	}
	// Stuffing in the header is skipped.
	pes := pesRaw(0xC0, 0x80, append(encodePESClock(2, 7), 0xFF, 0xFF), []byte{5})
	if pts, _, data, err := parsePES(pes); err != nil || pts != 7 || !bytes.Equal(data, []byte{5}) {
		t.Errorf("stuffing: %d % x %v", pts, data, err)
	}
	for _, short := range [][]byte{nil, {0, 0, 1}, {0, 0, 1, 0xE0, 0, 0, 0x80, 0x80}} {
		if _, _, _, err := parsePES(short); err == nil {
			t.Errorf("% x: no error", short)
		}
	}
}

// TestPESEndsAtItsLength: a PES with a PES_packet_length comes out as soon
// as its last packet is read, without waiting for the next PES.
func TestPESEndsAtItsLength(t *testing.T) {
	a := opusTrack()
	tw := newTSWriter(t, a)
	tw.opus(a, 90000, opusPacket20ms, opusPacket20ms)
	null := bytes.Repeat([]byte{0xFF}, packetSize) // the sync byte after the PES's last packet
	null[0], null[1], null[2], null[3] = syncByte, 0x1F, 0xFF, 0x10
	r := &blockingReader{data: append(tw.buf.Bytes(), null...), closed: make(chan struct{})}
	defer r.Close()

	got := make(chan Frame, 2)
	c := &collector{t: t}
	c.onFrame = func(f *Frame) error {
		got <- *f
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- NewDemuxer(r, Options{}).Run(t.Context(), c) }()
	for i, pts := range []int64{90000, 91800} {
		select {
		case f := <-got:
			if f.PTS != pts || !bytes.Equal(f.Data, opusPacket20ms) {
				t.Errorf("frame %d: PTS %d, % x", i, f.PTS, f.Data)
			}
		case <-time.After(testDeadline):
			t.Fatal("the PES did not come out while the input waited")
		}
	}
	_ = r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Run = %v, want the reader's error", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Run did not return")
	}
}

// TestPESCutByEnd: an input that ends, at a packet boundary, before an Opus
// PES reaches its PES_packet_length: that PES is dropped and reported; a
// video PES without PES_packet_length in progress at the end is delivered.
func TestPESCutByEnd(t *testing.T) {
	ccs := map[uint16]*byte{256: new(byte), 257: new(byte)}
	var stream [][]byte
	add := func(p uint16, pes []byte) [][]byte {
		pkts := tsPackets(p, ccs[p], pes)
		stream = append(stream, pkts...)
		return pkts
	}
	stream = append(stream, sectionPackets(pidPAT, 0, patSection(1, 0x1000, 0))...)
	stream = append(stream, sectionPackets(0x1000, 0, pmtSection(1, 0, esVideo, esOpus))...)
	idr := pesWithPTS(0xE0, 90000, -1, annexB(testSPS, testPPS, testIDR))
	setPESLength(idr, 0)
	add(256, idr)
	add(257, pesWithPTS(0xC0, 90000, -1, opusAU(opusPacket20ms)))
	long := append(opusAU(randomNALU(0xf8, 250, 1)), opusAU(randomNALU(0xf8, 250, 2))...)
	if p := add(257, pesWithPTS(0xC0, 91800, -1, long)); len(p) != 3 {
		t.Fatalf("%d packets", len(p))
	}
	stream = stream[:len(stream)-1]

	res := demuxBytes(t, bytes.Join(stream, nil))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.errorsIs(ErrDemux) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrDemux", res.errors)
	}
	if a := res.audio(); len(a) != 1 || a[0].PTS != 90000 {
		t.Errorf("%d audio frames, want the one at 90000", len(a))
	}
	if v := res.video(); len(v) != 1 || !bytes.Equal(v[0].Data, annexB(testSPS, testPPS, testIDR)) {
		t.Errorf("%d video frames, want the keyframe", len(v))
	}
}
