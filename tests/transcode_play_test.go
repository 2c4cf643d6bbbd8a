//go:build external

package tests

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/transcode"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// audioRTP records the RTP timestamps and sequence numbers of a viewer's
// audio track, and how many video packets it got.
type audioRTP struct {
	mu     sync.Mutex
	ts     []uint32
	seq    []uint16
	video  int
	signal chan struct{}
}

func (a *audioRTP) counts() (audio, video int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ts), a.video
}

// publishEpochs publishes data through the transcoding stage as one
// publication per epoch, one after the other, paced at real time.
func publishEpochs(t *testing.T, ctx context.Context, pubs ingest.NewPublisherFunc, stream string, data []byte, epochs ...uint64) {
	t.Helper()
	for _, epoch := range epochs {
		pub, err := pubs(ctx, stream, epoch, nil)
		if err != nil {
			t.Error(err)
			return
		}
		h := &stagePaced{ctx: ctx, pub: pub}
		err = tsframes.NewDemuxer(strings.NewReader(string(data)), tsframes.Options{SourceAudio: true}).Run(ctx, h)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if serr := pub.Shutdown(sctx); serr != nil && ctx.Err() == nil {
			t.Errorf("publisher shutdown: %v", serr)
		}
		cancel()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("publishing epoch %d: %v", epoch, err)
			}
			return
		}
	}
}

// stagePaced publishes what a Demuxer reads at its DTS (a live source).
type stagePaced struct {
	ctx   context.Context
	pub   ingest.Publisher
	start time.Time
	first int64
}

func (h *stagePaced) Tracks(a tsframes.Announcement) error { return h.pub.Announce(h.ctx, a) }

func (h *stagePaced) Frame(f tsframes.Frame) error {
	if h.start.IsZero() {
		h.start, h.first = time.Now(), f.DTS
	}
	if d := time.Until(h.start.Add(time.Duration(f.DTS-h.first) * time.Second / 90000)); d > 0 {
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-h.ctx.Done():
			tm.Stop()
			return h.ctx.Err()
		}
	}
	return h.pub.Publish(h.ctx, f)
}

// TestTranscodedAudioPlays: an H.264+AAC stream published through the
// transcoding stage plays on a whep-node with Opus audio; a pion viewer gets
// Opus RTP whose timestamps advance by 960 (20 ms) per packet, continuous
// across a new epoch of the stream (a reconnecting encoder).
func TestTranscodedAudioPlays(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	dir := t.TempDir()
	fixture := filepath.Join(dir, "aac.ts")
	gen := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=4",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-b:a", "96k", "-f", "mpegts", fixture)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}

	connect := whepBus(t)
	nc := connect()
	stage, err := transcode.New(nc, prometheus.NewRegistry(), transcode.Config{Mode: transcode.ModeAudio, Logger: whepLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stage.Close)
	pubs := stage.Publishers(ingest.BusPublishers(nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}}))
	url := whepNode(t, connect(), nil)

	pubCtx, stopPub := context.WithCancel(ctx)
	published := make(chan struct{})
	go func() {
		defer close(published)
		publishEpochs(t, pubCtx, pubs, "aacplay", data, 1, 2)
	}()
	t.Cleanup(func() { stopPub(); <-published })

	rec := &audioRTP{signal: make(chan struct{}, 1)}
	pc := piontest.RecvOnly(t, nil, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = pc.GracefulClose(); wg.Wait() })
	piontest.ReadRTP(pc, &wg, func(tr *webrtc.TrackRemote, p *rtp.Packet, _ time.Time) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			rec.ts, rec.seq = append(rec.ts, p.Timestamp), append(rec.seq, p.SequenceNumber)
		} else {
			rec.video++
		}
	})
	// The stream is announced (with its derived track) once published.
	var resp *http.Response
	var answer string
	whepWait(t, ctx, "the stream to be playable", func() bool {
		resp, answer = whepPost(t, ctx, url+"/whep/aacplay", piontest.Offer(t, pc))
		return resp.StatusCode == http.StatusCreated
	})
	if a := mediaSection(answer, "audio"); !strings.Contains(a, "opus/48000/2") || unused(a) {
		t.Fatalf("audio section of the answer does not send Opus:\n%s", a)
	}
	piontest.Answer(t, pc, answer)

	// Both epochs: about 8 s of audio, 400 packets; wait for most of it.
	whepWait(t, ctx, "7 s of Opus", func() bool { a, _ := rec.counts(); return a >= 350 })
	stopPub()
	<-published
	rec.mu.Lock()
	ts, seq, video := append([]uint32(nil), rec.ts...), append([]uint16(nil), rec.seq...), rec.video
	rec.mu.Unlock()
	if video == 0 {
		t.Fatal("no video packets")
	}
	jumps := 0
	for i := 1; i < len(ts); i++ {
		if seq[i] != seq[i-1]+1 {
			t.Fatalf("audio packet %d: sequence %d after %d", i, seq[i], seq[i-1])
		}
		step := int32(ts[i] - ts[i-1])
		switch {
		case step == 960:
		case step > 0 && step <= 48000:
			// The epoch change: the next epoch's audio starts later on
			// the viewer's timeline, never earlier.
			jumps++
			t.Logf("audio packet %d: timestamp step %d (%.0f ms)", i, step, float64(step)/48)
		default:
			t.Fatalf("audio packet %d: timestamp step %d, want 960 (20 ms)", i, step)
		}
	}
	if jumps > 2 {
		t.Fatalf("%d timestamp discontinuities in %d packets, want at most the epoch change's", jumps, len(ts))
	}
	t.Logf("FIGURE transcode_viewer_opus_packets=%d video_packets=%d epoch_jumps=%d", len(ts), video, jumps)
}
