//go:build external

package transcode

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestTranscodeFormats: more source formats than TestTranscodeToOpus's,
// each checked the same way (derived Opus announced, 20 ms packets
// continuous, the beep within 20 ms of the source's): AAC 5.1 downmixed
// to stereo, AAC and MP2 at 32 kHz, AC-3 at 44.1 kHz, AAC in LATM/LOAS
// (stream type 0x11, ffmpeg -mpegts_flags latm). HE-AAC is not tested:
// Debian's ffmpeg has only its native AAC encoder, which makes AAC-LC only
// (no libfdk_aac).
func TestTranscodeFormats(t *testing.T) {
	cases := []struct {
		name string
		rate int
		want tsframes.Codec
		args []string
	}{
		{"aac-5.1-48k", 48000, tsframes.CodecAAC, []string{"-c:a", "aac", "-ac", "6"}},
		{"aac-stereo-32k", 32000, tsframes.CodecAAC, []string{"-c:a", "aac", "-ar", "32000", "-ac", "2"}},
		{"mp2-stereo-32k", 32000, tsframes.CodecMPEGAudio, []string{"-c:a", "mp2", "-ar", "32000", "-ac", "2"}},
		{"ac3-stereo-44k", 44100, tsframes.CodecAC3, []string{"-c:a", "ac3", "-ar", "44100", "-ac", "2"}},
		{"aac-latm-stereo-44k", 44100, tsframes.CodecAACLATM, []string{"-c:a", "aac", "-ar", "44100", "-ac", "2", "-mpegts_flags", "latm"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkTranscodedBeep(t, tc.name, tc.want, tc.rate, tc.args...)
		})
	}
}

// TestTranscodeLATMFixture: testdata/latm.ts (H.264 + AAC in LATM, a
// 440 Hz tone, 4 s) comes out of the stage as a derived Opus track made
// from its LATM track, in continuous 20 ms packets, the tone keeping its
// frequency and its level (within 1 dB).
func TestTranscodeLATMFixture(t *testing.T) {
	ts := newTestStage(t, Config{})
	pub := ts.open(t, "latm", 1)
	c := collectOpus(t, ts.nc, "latm")
	src := feed(t, pub, tstest.Read(t, "latm.ts"), false, nil)
	if len(src) == 0 || src[0].Codec != tsframes.CodecAACLATM {
		t.Fatalf("source audio: %d frames, want AAC LATM", len(src))
	}
	// 4 s of source: all but the encoder's last packets.
	c.wait(t, 20*time.Second, "3.8 s of Opus", func(f []bus.Message) bool { return len(f) >= 190 })
	frames, _ := c.snapshot()
	checkContinuous(t, frames)
	anns := c.announcements()
	if len(anns) == 0 {
		t.Fatal("no announcement")
	}
	a := anns[len(anns)-1]
	tr, ok := a.Track(a.Audio)
	if !ok || tr.Codec != tsframes.CodecOpus || !tr.WebRTC || tr.DerivedFrom == 0 {
		t.Fatalf("announcement %+v: audio %d is not a derived Opus track", a, a.Audio)
	}
	if s, _ := a.Track(tr.DerivedFrom); s.Codec != tsframes.CodecAACLATM || s.WebRTC {
		t.Fatalf("derived from %+v, want the AAC LATM track", s)
	}

	srcPCM, opusPCM := decodePCM(t, sourceTS(t, src)), decodePCM(t, opusTS(t, frames))
	from := float64(src[0].PTS)/90000 + 0.5
	srcHz, srcDB := toneOf(srcPCM, from, from+3)
	hz, db := toneOf(opusPCM, from, from+3)
	t.Logf("FIGURE transcode_tone_latm source=%.2f Hz %.2f dBFS, opus=%.2f Hz %.2f dBFS", srcHz, srcDB, hz, db)
	if math.Abs(hz-440) > 2 || math.Abs(srcHz-440) > 2 {
		t.Fatalf("tone at %.2f Hz after Opus (%.2f Hz in the source), want 440", hz, srcHz)
	}
	if math.Abs(db-srcDB) > 1 {
		t.Fatalf("level %.2f dBFS after Opus, %.2f dBFS in the source: want within 1 dB", db, srcDB)
	}
}

// TestTranscodeSourceFormatChange: a source whose audio changes mid-stream
// from AAC (44.1 kHz) to MP2 (48 kHz), its timestamps continuing (a new
// PMT), published at real time: the stream is re-announced with a derived Opus track made from the
// MP2 track, and the Opus goes on past the change.
func TestTranscodeSourceFormatChange(t *testing.T) {
	ts := newTestStage(t, Config{})
	first := ffmpegFixture(t, "aac.ts", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25", "-c:a", "aac", "-ac", "2")
	second := ffmpegFixture(t, "mp2.ts", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25", "-c:a", "mp2", "-ac", "2", "-output_ts_offset", "2")
	pub := ts.open(t, "switch", 1)
	c := collectOpus(t, ts.nc, "switch")
	src := feed(t, pub, bytes.Join([][]byte{first, second}, nil), true, nil)
	var mp2 *tsframes.Frame
	for i := range src {
		if src[i].Codec == tsframes.CodecMPEGAudio {
			mp2 = &src[i]
			break
		}
	}
	if src[0].Codec != tsframes.CodecAAC || mp2 == nil {
		t.Fatalf("source audio: want AAC then MPEG audio, got %s first and no MPEG audio: %v", src[0].Codec, mp2 == nil)
	}
	last := src[len(src)-1].PTS
	c.wait(t, 20*time.Second, "Opus of the source's last half second", func(f []bus.Message) bool {
		return len(f) > 0 && f[len(f)-1].Frame.PTS >= last-45000
	})
	anns := c.announcements()
	var codecs []tsframes.Codec
	for _, a := range anns {
		tr, ok := a.Track(a.Audio)
		if !ok || tr.DerivedFrom == 0 {
			t.Fatalf("announcement %+v: audio is not a derived track", a)
		}
		s, _ := a.Track(tr.DerivedFrom)
		if len(codecs) == 0 || codecs[len(codecs)-1] != s.Codec {
			codecs = append(codecs, s.Codec)
		}
	}
	if len(codecs) != 2 || codecs[0] != tsframes.CodecAAC || codecs[1] != tsframes.CodecMPEGAudio {
		t.Fatalf("the derived Opus track was announced made from %v, want AAC then MPEG audio", codecs)
	}
	frames, _ := c.snapshot()
	after := 0
	for _, f := range frames {
		if f.Frame.PTS >= mp2.PTS {
			after++
		}
	}
	// 2 s of MP2: most of its 100 packets (the new child starts afresh).
	if after < 80 {
		t.Fatalf("%d Opus packets after the change to MP2, want at least 80 of 100", after)
	}
	t.Logf("FIGURE transcode_format_change announcements=%d opus_after_change=%d", len(anns), after)
}
