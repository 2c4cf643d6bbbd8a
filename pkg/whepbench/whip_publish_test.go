package whepbench

import (
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest/whip"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestPublishWHIPFeedsAWHIPIngest: two publishers of av.ts against a WHIP
// handler connect, and each publication receives the file's keyframe first
// and then H.264 and Opus.
func TestPublishWHIPFeedsAWHIPIngest(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rec := ingesttest.NewRecorder()
	se := piontest.Loopback()
	h := whip.NewHandler(rec.Publications(t), whip.Config{SettingEngine: &se})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})

	rep, err := PublishWHIP(t.Context(), WHIPPublishConfig{URL: srv.URL + "/whip/", Prefix: "w", Streams: 2,
		File: tstest.Read(t, "av.ts"), Duration: 4 * time.Second, Stagger: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Streams != 2 || rep.Connected != 2 || rep.Failed != 0 || rep.VideoFrames < 60 || rep.AudioFrames < 100 {
		t.Fatalf("report %+v, want 2 connected publishers that sent video and audio for seconds", rep)
	}
	if rep.FileBitrate < 100_000 {
		t.Fatalf("file bitrate %.0f b/s", rep.FileBitrate)
	}
	for range 2 {
		pub := rec.Opened(t, 10*time.Second)
		pub.WaitEnded(t, 10*time.Second) // DELETE at the end of the run
		frames := pub.Frames()
		var video, audio int
		for _, f := range frames {
			switch f.Kind {
			case tsframes.KindVideo:
				video++
			case tsframes.KindAudio:
				audio++
			}
		}
		if len(frames) == 0 || !frames[0].Key || video < 30 || audio < 50 {
			t.Fatalf("publication: %d frames (first key=%v), %d video, %d audio", len(frames), len(frames) > 0 && frames[0].Key, video, audio)
		}
	}
}
