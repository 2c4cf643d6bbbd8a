//go:build external

package rtmp

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestFFmpegPublishesH264AndAAC publishes a fixture with ffmpeg over RTMP,
// as the README tells users to: the video is published, the AAC announced.
func TestFFmpegPublishesH264AndAAC(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed: apt-get install ffmpeg")
	}
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{Tokens: []string{"s3cret"}}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	url := fmt.Sprintf("rtmp://%s/live/cam1?token=s3cret", l.Addr())
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-i", tstest.Path(t, "av.ts"), "-c:v", "copy", "-c:a", "aac", "-f", "flv", url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	p := rec.Opened(t, testDeadline)
	p.WaitEnded(t, testDeadline)
	anns := p.Announcements()
	if len(anns) == 0 || len(anns[0].Tracks) != 2 ||
		anns[0].Tracks[0].Codec != tsframes.CodecH264 || anns[0].Tracks[1].Codec != tsframes.CodecAAC || anns[0].Tracks[1].WebRTC {
		t.Fatalf("announcements %+v, want H.264 and AAC (not WebRTC)", anns)
	}
	// Video as sent; AAC as ADTS frames for the transcoding stage, about
	// as many as ffmpeg encodes for the clip's audio (1024 samples each).
	var video, aac int
	var aacEnd int64
	for _, f := range p.Frames() {
		switch {
		case f.Kind == tsframes.KindVideo:
			video++
		case f.Codec == tsframes.CodecAAC:
			var pkts mpeg4audio.ADTSPackets
			if err := pkts.Unmarshal(f.Data); err != nil || len(pkts) != 1 || len(pkts[0].AU) == 0 {
				t.Fatalf("AAC frame %d: %v (%d ADTS packets)", aac, err, len(pkts))
			}
			aac++
			aacEnd = f.PTS
		default:
			t.Fatalf("a %s frame published", f.Codec)
		}
	}
	if want := len(ref.Kind(tsframes.KindVideo)); video != want {
		t.Errorf("%d video frames, want %d", video, want)
	}
	audio := ref.Kind(tsframes.KindAudio)
	span := float64(audio[len(audio)-1].PTS-audio[0].PTS) / 90000
	if want := span * 48000 / 1024; float64(aac) < 0.9*want || float64(aac) > 1.1*want+2 {
		t.Errorf("%d AAC frames (last at PTS %d), want about %.0f for %.2f s of audio", aac, aacEnd, want, span)
	}
}
