package demo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestNewClip(t *testing.T) {
	c := synthClip(t)
	if c.period != 18000 {
		t.Errorf("period %d, want 18000 (6 frames of 3000)", c.period)
	}
	if len(c.frames) != 16 {
		t.Fatalf("%d frames, want 16", len(c.frames))
	}
	for i := 1; i < len(c.frames); i++ {
		if c.frames[i].DTS < c.frames[i-1].DTS {
			t.Errorf("frame %d DTS %d before %d", i, c.frames[i].DTS, c.frames[i-1].DTS)
		}
	}
	if c.frames[0].PID != audioPID || c.frames[0].PTS != 126000 {
		t.Errorf("first frame %+v, want the audio packet at 126000", c.frames[0])
	}
}

func TestNewClipTrimsOverlap(t *testing.T) {
	a, frames := synthFrames()
	// An 11th audio packet (the encoder's tail) would overlap the next pass.
	frames = append(frames, tsframes.Frame{PID: audioPID, Kind: tsframes.KindAudio, PTS: 144000, DTS: 144000, Duration: 1800})
	// Data frames are not media and are dropped.
	frames = append(frames, tsframes.Frame{PID: 300, Kind: tsframes.KindData, PTS: 130000, DTS: 130000})
	c, err := newClip(a, frames)
	if err != nil {
		t.Fatal(err)
	}
	if c.period != 18000 || len(c.frames) != 16 {
		t.Fatalf("period %d, %d frames; want 18000, 16", c.period, len(c.frames))
	}
	for _, f := range c.frames {
		if f.PTS == 144000 || f.Kind == tsframes.KindData {
			t.Errorf("frame %+v kept", f)
		}
	}
}

func TestNewClipAudioOnly(t *testing.T) {
	a, frames := synthFrames()
	c, err := newClip(a, frames[:10])
	if err != nil {
		t.Fatal(err)
	}
	if c.period != 18000 || len(c.frames) != 10 {
		t.Errorf("period %d, %d frames; want 18000, 10", c.period, len(c.frames))
	}
}

func TestNewClipErrors(t *testing.T) {
	a, frames := synthFrames()
	cases := map[string][]tsframes.Frame{
		"none":         nil,
		"data only":    {{PID: 300, Kind: tsframes.KindData}},
		"single video": {frames[10]},
	}
	for name, fs := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := newClip(a, fs); !errors.Is(err, ErrEmptySample) {
				t.Errorf("error %v, want ErrEmptySample", err)
			}
		})
	}
}

func TestBundledSample(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := loadClip(ctx, Sample())
	if err != nil {
		t.Fatal(err)
	}
	// gen-sample.sh: 10 s, 300 frames at 30 fps with a keyframe every 30,
	// 500 Opus packets of 20 ms.
	if c.period != 900000 {
		t.Errorf("period %d, want 900000 (10 s)", c.period)
	}
	var video, audio, keys int
	for _, f := range c.frames {
		switch f.Codec {
		case tsframes.CodecH264:
			video++
			if f.Key {
				keys++
			}
		case tsframes.CodecOpus:
			audio++
			if f.Duration != 1800 {
				t.Errorf("Opus packet at %d lasts %d, want 1800", f.PTS, f.Duration)
			}
		}
	}
	if video != 300 || keys != 10 || audio != 500 {
		t.Errorf("%d video frames (%d keyframes), %d audio packets; want 300 (10), 500", video, keys, audio)
	}
	var h264, opus bool
	for _, tr := range c.announcement.Tracks {
		h264 = h264 || tr.Codec == tsframes.CodecH264 && tr.ProfileLevelID != ""
		opus = opus || tr.Codec == tsframes.CodecOpus && tr.Channels == 2 && tr.SampleRate == 48000
	}
	if !h264 || !opus {
		t.Errorf("announcement %+v, want H.264 with a profile-level-id and stereo 48 kHz Opus", c.announcement)
	}
	if sample[0] != 0x47 || len(Sample()) != len(sample) || len(sample) > 1<<20 {
		t.Errorf("sample: %d bytes starting with %#x", len(sample), sample[0])
	}
}
