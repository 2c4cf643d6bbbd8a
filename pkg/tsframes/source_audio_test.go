package tsframes_test

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/ac3"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg1audio"

	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// adtsFrames counts the ADTS frames of data, walking their lengths; it
// fails the test when they do not tile data exactly.
func adtsFrames(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		if len(data) < 7 || data[0] != 0xff || data[1]&0xf0 != 0xf0 {
			t.Fatalf("no ADTS header at frame %d (%d bytes left)", n+1, len(data))
		}
		l := int(data[3]&0x03)<<11 | int(data[4])<<3 | int(data[5])>>5
		if l < 7 || l > len(data) {
			t.Fatalf("ADTS frame %d: length %d, %d bytes left", n+1, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n
}

// loasFrames counts the LOAS AudioSyncStream frames of data (ISO 14496-3
// 1.7.2: an 11-bit syncword 0x2B7, a 13-bit length), walking their lengths.
func loasFrames(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		if len(data) < 3 || data[0] != 0x56 || data[1]&0xe0 != 0xe0 {
			t.Fatalf("no LOAS syncword at frame %d (%d bytes left)", n+1, len(data))
		}
		l := 3 + (int(data[1]&0x1f)<<8 | int(data[2]))
		if l > len(data) {
			t.Fatalf("LOAS frame %d: length %d, %d bytes left", n+1, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n
}

// mp2Frames counts the MPEG audio frames of data, walking their headers.
func mp2Frames(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		var h mpeg1audio.FrameHeader
		if err := h.Unmarshal(data); err != nil {
			t.Fatalf("MPEG audio frame %d: %v", n+1, err)
		}
		l := h.FrameLen()
		if l < 4 || l > len(data) {
			t.Fatalf("MPEG audio frame %d: length %d, %d bytes left", n+1, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n
}

// ac3Frames counts the AC-3 sync frames of data, walking their sizes.
func ac3Frames(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		var s ac3.SyncInfo
		if err := s.Unmarshal(data); err != nil {
			t.Fatalf("AC-3 frame %d: %v", n+1, err)
		}
		l := s.FrameSize()
		if l < 5 || l > len(data) {
			t.Fatalf("AC-3 frame %d: size %d, %d bytes left", n+1, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n
}

// TestSourceAudioDeliversPES: with SourceAudio, the PES of AAC (ADTS and
// LATM), MPEG audio and AC-3 tracks come out whole (every codec frame of the
// fixture, as ffprobe counts them in testdata/NAME.ts.expect), in PTS
// order, and the video is the same as without it; the track is announced
// with its codec, as one WebRTC cannot carry.
func TestSourceAudioDeliversPES(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		codec   tsframes.Codec
		frames  int // audio_packets of the fixture's .expect
		count   func(*testing.T, []byte) int
	}{
		{"aac.ts", tsframes.CodecAAC, 189, adtsFrames},
		{"latm.ts", tsframes.CodecAACLATM, 189, loasFrames},
		{"mp2.ts", tsframes.CodecMPEGAudio, 167, mp2Frames},
		{"ac3.ts", tsframes.CodecAC3, 125, ac3Frames},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			data := tstest.Read(t, tc.fixture)
			var off, on tstest.Demuxed
			if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{}).Run(t.Context(), &off); err != nil {
				t.Fatal(err)
			}
			if n := len(off.Kind(tsframes.KindAudio)); n != 0 {
				t.Fatalf("without SourceAudio: %d audio frames, want 0", n)
			}
			if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{SourceAudio: true}).Run(t.Context(), &on); err != nil {
				t.Fatal(err)
			}
			if got, want := len(on.Kind(tsframes.KindVideo)), len(off.Kind(tsframes.KindVideo)); got != want {
				t.Fatalf("video frames %d with SourceAudio, %d without", got, want)
			}
			if len(on.Announcements) != 1 {
				t.Fatalf("%d announcements, want 1", len(on.Announcements))
			}
			var track *tsframes.Track
			for i, tr := range on.Announcements[0].Tracks {
				if tr.Kind == tsframes.KindAudio {
					track = &on.Announcements[0].Tracks[i]
				}
			}
			if track == nil || track.Codec != tc.codec || track.WebRTC {
				t.Fatalf("audio track announced as %+v, want codec %s without WebRTC", track, tc.codec)
			}
			audio := on.Kind(tsframes.KindAudio)
			if len(audio) == 0 {
				t.Fatal("no audio frame delivered")
			}
			if audio[0].PID != track.PID {
				t.Fatalf("audio frames on PID %d, the track is PID %d", audio[0].PID, track.PID)
			}
			total, last := 0, int64(-1)
			for i, f := range audio {
				if f.Codec != tc.codec || f.Duration != 0 || f.More || f.DTS != f.PTS {
					t.Fatalf("frame %d: codec %s, duration %d, more %v, PTS %d DTS %d", i, f.Codec, f.Duration, f.More, f.PTS, f.DTS)
				}
				if f.PTS <= last {
					t.Fatalf("frame %d: PTS %d after %d", i, f.PTS, last)
				}
				last = f.PTS
				total += tc.count(t, f.Data)
			}
			if total != tc.frames {
				t.Fatalf("%d codec frames in %d PES, want %d", total, len(audio), tc.frames)
			}
		})
	}
}
