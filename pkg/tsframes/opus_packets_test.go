package tsframes

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
)

// TestOpusDurationExact: every TOC config and frame count gives a whole
// number of 90 kHz ticks.
func TestOpusDurationExact(t *testing.T) {
	for config := range 32 {
		for count := 1; count <= 48; count++ {
			pkt := []byte{byte(config<<3 | 3), byte(count)}
			samples := opus.PacketDuration2(pkt)
			if samples*90000%48000 != 0 {
				t.Fatalf("config %d x%d: %d samples is not a whole number of 90 kHz ticks", config, count, samples)
			}
			if got := opusDuration90k(pkt); got != samples*15/8 {
				t.Fatalf("config %d x%d: %d ticks for %d samples", config, count, got, samples)
			}
		}
	}
	for _, tc := range []struct {
		pkt  []byte
		want int64
	}{
		{opusPacket20ms, 1800},
		{opusPacket10ms, 900},
		{opusPacket60ms, 5400},
		{opusPacket2_5ms, 225},
		{opusPacket40ms, 3600},
		{opusPacketTwice, 3600},
		{[]byte{0xfa, 0x00}, 3600}, // code 2: two frames of different sizes
		{nil, 0},
		{[]byte{0xfb}, 0},       // code 3 without its count byte
		{[]byte{0xfb, 0x00}, 0}, // code 3 with zero frames
	} {
		if got := opusDuration90k(tc.pkt); got != tc.want {
			t.Errorf("opusDuration90k(% x) = %d, want %d", tc.pkt, got, tc.want)
		}
	}
}

func TestOpusFrames(t *testing.T) {
	var in [][]byte // copies: the test overwrites them
	for _, p := range [][]byte{opusPacket20ms, {}, opusPacket60ms, {0xfb, 0x00}, opusPacket10ms} {
		in = append(in, append([]byte{}, p...))
	}
	var bad []error
	frames := opusFrames(257, 1000, in, func(err error) { bad = append(bad, err) })
	want := []struct {
		pts, dur int64
		data     []byte
	}{{1000, 1800, opusPacket20ms}, {2800, 5400, opusPacket60ms}, {8200, 900, opusPacket10ms}}
	if len(frames) != len(want) || len(bad) != 2 {
		t.Fatalf("%d frames, %d errors", len(frames), len(bad))
	}
	for _, err := range bad {
		if !errors.Is(err, ErrOpus) {
			t.Errorf("error %v does not wrap ErrOpus", err)
		}
	}
	for i, w := range want {
		f := frames[i]
		if f.PID != 257 || f.PTS != w.pts || f.DTS != w.pts || f.Duration != w.dur || !bytes.Equal(f.Data, w.data) {
			t.Errorf("frame %d = %+v, want %+v", i, f, w)
		}
		// More: another packet of the PES follows (all but the last kept).
		if f.More != (i < len(want)-1) {
			t.Errorf("frame %d: More = %v", i, f.More)
		}
		if cap(f.Data) != len(f.Data) {
			t.Errorf("frame %d: capacity %d beyond its length %d", i, cap(f.Data), len(f.Data))
		}
	}
	// Frames do not alias the input.
	for i := range in {
		for j := range in[i] {
			in[i][j] ^= 0xFF
		}
	}
	for i, w := range want {
		if !bytes.Equal(frames[i].Data, w.data) {
			t.Errorf("frame %d changed with its input", i)
		}
	}
}

// TestOpusFixture: every Opus packet of av.ts is there, 20 ms each, and each
// starts where the previous one ends (ffmpeg's PES are contiguous, so this
// holds within and across PES).
func TestOpusFixture(t *testing.T) {
	want := readExpect(t, "av")
	res := demuxBytes(t, readFixture(t, "av"))
	if res.err != nil {
		t.Fatal(res.err)
	}
	audio := res.audio()
	if len(audio) != want.audioPackets {
		t.Fatalf("%d Opus packets, want %d", len(audio), want.audioPackets)
	}
	pes := 0
	for i, f := range audio {
		if f.Duration != 1800 || f.DTS != f.PTS || len(f.Data) == 0 || f.Codec != CodecOpus {
			t.Fatalf("packet %d: %+v", i, f)
		}
		if !f.More {
			pes++
		}
		if i > 0 && f.PTS-audio[i-1].PTS != audio[i-1].Duration {
			t.Fatalf("packet %d: PTS %d, previous %d + %d", i, f.PTS, audio[i-1].PTS, audio[i-1].Duration)
		}
	}
	// ffmpeg puts 5 packets in a PES; the first PES starts at 1.4 s.
	if pes != (len(audio)+4)/5 || audio[len(audio)-1].More {
		t.Errorf("%d PES ends (More false) for %d packets, want one per 5", pes, len(audio))
	}
	if audio[0].PTS != 126000 {
		t.Errorf("first Opus PTS %d, want 126000", audio[0].PTS)
	}
}

var (
	opusPacket20ms  = []byte{0xf8, 0xff, 0xfe}             // CELT FB 20 ms, 1 frame
	opusPacket10ms  = []byte{0xf0, 0x01, 0x02, 0x03}       // CELT FB 10 ms
	opusPacket60ms  = []byte{0xfb, 0x03, 0x11, 0x22, 0x33} // code 3, 3 x 20 ms
	opusPacket2_5ms = []byte{0xe0, 0x44}                   // CELT FB 2.5 ms
	opusPacket40ms  = []byte{0x10, 0x55, 0x66}             // SILK NB 40 ms
	opusPacketTwice = []byte{0xf9, 0x77, 0x88}             // code 1, 2 x 20 ms
)

// TestOpusSplit: a PES with several Opus packets is split, each timed at
// the PES PTS plus the durations before it; an empty packet is dropped and
// counted.
func TestOpusSplit(t *testing.T) {
	a := opusTrack()
	tw := newTSWriter(t, a)
	tw.opus(a, 90000, opusPacket20ms, opusPacket10ms, opusPacket60ms, opusPacket2_5ms, opusPacket40ms, opusPacketTwice)
	tw.opus(a, 90000+1800+900+5400+225+3600+3600, opusPacket20ms, []byte{}, opusPacket10ms)

	res := demuxBytes(t, tw.buf.Bytes())
	if res.err != nil {
		t.Fatal(res.err)
	}
	want := []struct {
		pts, dur int64
		data     []byte
	}{
		{90000, 1800, opusPacket20ms},
		{91800, 900, opusPacket10ms},
		{92700, 5400, opusPacket60ms},
		{98100, 225, opusPacket2_5ms},
		{98325, 3600, opusPacket40ms},
		{101925, 3600, opusPacketTwice},
		{105525, 1800, opusPacket20ms},
		{107325, 900, opusPacket10ms},
	}
	if len(res.frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(res.frames), len(want))
	}
	for i, w := range want {
		f := res.frames[i]
		if f.PID != 257 || f.Kind != KindAudio || f.Codec != CodecOpus || f.PTS != w.pts || f.DTS != w.pts ||
			f.Duration != w.dur || !bytes.Equal(f.Data, w.data) {
			t.Errorf("frame %d = %+v, want PTS %d duration %d data % x", i, f, w.pts, w.dur, w.data)
		}
	}
	if res.errorsIs(ErrOpus) != 1 || len(res.errors) != 1 {
		t.Errorf("decode errors %v, want one ErrOpus", res.errors)
	}
	if tr := res.anns[0].Tracks; len(tr) != 1 || tr[0] != (Track{PID: 257, Kind: KindAudio, Codec: CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000}) {
		t.Errorf("announcement %+v", tr)
	}
}
