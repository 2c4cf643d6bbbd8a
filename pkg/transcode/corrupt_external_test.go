//go:build external

package transcode

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// busVideoLog keeps the video frames of a stream read from the bus.
type busVideoLog struct {
	mu     sync.Mutex
	frames []tsframes.Frame
}

func logBusVideo(t *testing.T, ts *testStage, stream string) *busVideoLog {
	t.Helper()
	c := &busVideoLog{}
	sub, err := bus.Subscribe(t.Context(), ts.nc, stream, bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if !m.IsFrame() || m.Frame.Kind != tsframes.KindVideo {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		f := m.Frame
		f.Data = bytes.Clone(f.Data)
		c.frames = append(c.frames, f)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return c
}

// videoRecorder passes frames on to a publisher and keeps the video it
// published.
type videoRecorder struct {
	*corruptingPublisher
	video []tsframes.Frame
}

func (v *videoRecorder) Publish(ctx context.Context, f tsframes.Frame) error {
	if f.Kind == tsframes.KindVideo {
		g := f
		g.Data = bytes.Clone(f.Data)
		v.video = append(v.video, g)
	}
	return v.corruptingPublisher.Publish(ctx, f)
}

// TestTranscodeCorruptAC3AndMP2: H.264 with AC-3 (5.1) or MP2 audio, a
// third of the audio PES corrupted (bytes flipped past the frame header):
// the stage keeps publishing Opus up to the end of the source, in order and
// without a restart, and the video reaches the bus untouched (every frame,
// same PTS and bytes).
func TestTranscodeCorruptAC3AndMP2(t *testing.T) {
	for _, tc := range []struct {
		codec string
		ch    int
		want  tsframes.Codec
	}{
		{"ac3", 6, tsframes.CodecAC3},
		{"mp2", 2, tsframes.CodecMPEGAudio},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			ts := newTestStage(t, Config{})
			data := ffmpegFixture(t, tc.codec+".ts",
				"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
				"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25",
				"-c:a", tc.codec, "-ac", fmt.Sprint(tc.ch))
			stream := "corrupt" + tc.codec
			rec := &videoRecorder{corruptingPublisher: &corruptingPublisher{Publisher: ts.open(t, stream, 1)}}
			c := collectOpus(t, ts.nc, stream)
			vc := logBusVideo(t, ts, stream)
			src := feed(t, rec, data, false, nil)
			if len(src) == 0 || src[0].Codec != tc.want {
				t.Fatalf("source audio: %d frames, want %s", len(src), tc.want)
			}
			last := src[len(src)-1].PTS
			c.wait(t, 20*time.Second, "Opus of the source's last second", func(f []bus.Message) bool {
				return len(f) > 0 && f[len(f)-1].Frame.PTS >= last-90000
			})
			frames, _ := c.snapshot()
			for i := 1; i < len(frames); i++ {
				if frames[i].Frame.PTS < frames[i-1].Frame.PTS+frames[i-1].Frame.Duration {
					t.Fatalf("Opus frame %d: PTS %d overlaps the previous (%d)", i, frames[i].Frame.PTS, frames[i-1].Frame.PTS)
				}
			}
			// Two thirds of the source are intact: at least 60 % of the
			// 200 Opus packets of 4 s come out.
			if len(frames) < 120 {
				t.Fatalf("%d Opus packets, want at least 120 of 200 with a third of the source corrupt", len(frames))
			}
			restarts := testutil.ToFloat64(ts.stage.metrics.restarts.WithLabelValues(stream))
			if restarts != 0 {
				t.Fatalf("%v restarts, want none: a corrupt frame is the decoder's to skip", restarts)
			}
			// The video: every frame published reaches the bus as it was.
			deadline := time.Now().Add(5 * time.Second)
			for {
				vc.mu.Lock()
				n := len(vc.frames)
				vc.mu.Unlock()
				if n >= len(rec.video) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond) // polling a count, bounded by the deadline
			}
			vc.mu.Lock()
			got := append([]tsframes.Frame(nil), vc.frames...)
			vc.mu.Unlock()
			if len(got) != len(rec.video) || len(got) != 100 {
				t.Fatalf("%d video frames on the bus, %d published, want 100 (4 s at 25 fps)", len(got), len(rec.video))
			}
			for i := range got {
				if got[i].PTS != rec.video[i].PTS || got[i].Key != rec.video[i].Key || !bytes.Equal(got[i].Data, rec.video[i].Data) {
					t.Fatalf("video frame %d differs on the bus: PTS %d key %v %d bytes, published PTS %d key %v %d bytes",
						i, got[i].PTS, got[i].Key, len(got[i].Data), rec.video[i].PTS, rec.video[i].Key, len(rec.video[i].Data))
				}
			}
			t.Logf("FIGURE transcode_corrupt_%s opus_packets=%d (of about 200 for 4 s) audio_pes=%d corrupted=%d restarts=%v video_frames=%d",
				tc.codec, len(frames), len(src), len(src)/3, restarts, len(got))
		})
	}
}
