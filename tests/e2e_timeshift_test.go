//go:build external

package tests

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/proctest"
)

// timeShiftIngest runs ffmpeg encoding a test pattern and a tone (H.264
// with a 1 s GOP, Opus) in real time for d, published to the stack's
// broker as stream over HTTP PUT; the stream ends when ffmpeg does.
func (s *e2eStack) timeShiftIngest(t *testing.T, stream string, d time.Duration) *proctest.Proc {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is missing (%v): apt-get install -y ffmpeg", err)
	}
	secs := d.Seconds()
	return e2eStart(t, "ffmpeg "+stream, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.FormatFloat(secs, 'f', -1, 64),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "250k",
		"-c:a", "libopus", "-b:a", "32k", "-ac", "2", "-frame_duration", "20",
		"-f", "mpegts", "-method", "PUT", s.ingestURL+"/ingest/"+stream)
}

// TestE2ETimeShift is issue 17's "done when" against the broker and
// whep-node binaries: 20 s are ingested in real time and the stream ends;
// 2 s later a pion viewer with ?start=-12s plays about 10 s of the ended
// stream, every video and audio packet once with continuous timestamps, at
// real-time pace (±15 %), from a keyframe, until the node ends the session.
// Before the end, a live viewer seeks 10 s back and then to live again,
// with continuous RTP. Bad starts are 400, an unknown stream 404, a start
// after the stream's end 416 naming the window.
func TestE2ETimeShift(t *testing.T) {
	s, _ := startE2EStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	const stream = "tshift"
	ff := s.timeShiftIngest(t, stream, 20*time.Second)
	began := time.Now()
	s.waitLive(t, ctx, stream)

	// A live viewer seeks 10 s back 13 s in, plays 2 s, and returns to live.
	live := newRTPViewer(t)
	resp, _ := whepPlay(t, ctx, s.nodeURL, stream, live.whepClient)
	loc := s.nodeURL + resp.Header.Get("Location")
	live.waitPackets(t, ctx, mimeH264, 30)
	e2eWaitUntil(t, ctx, began.Add(13*time.Second))
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	if resp, body := whepDo(t, ctx, http.MethodPost, loc+"/seek", jsonHdr, `{"start":"-10s"}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seek -10s = %d %q", resp.StatusCode, body)
	}
	sought := time.Now()
	live.waitPacketsAfter(t, ctx, mimeH264, sought, 120)
	if resp, body := whepDo(t, ctx, http.MethodPost, loc+"/seek", jsonHdr, `{"start":"live"}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seek live = %d %q", resp.StatusCode, body)
	}
	live.waitPacketsAfter(t, ctx, mimeH264, time.Now(), 60)
	lv := checkContinuity(t, track{name: "seeking video", maxStep: 90000 / 2}, live.packets(mimeH264))
	la := checkContinuity(t, track{name: "seeking audio", audio: true, maxStep: 48000 / 2, nominal: 960}, live.packets(mimeOpus))
	t.Logf("seeking viewer: video %+v, audio %+v", lv, la)
	_ = live.pc.Close()

	// The stream ends with ffmpeg; 2 s later a viewer starts 12 s back.
	select {
	case <-ff.Done():
	case <-ctx.Done():
		t.Fatal("ffmpeg did not end")
	}
	ended := time.Now()
	e2eWaitUntil(t, ctx, ended.Add(2*time.Second))
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/whep/" + stream + "?start=soon", http.StatusBadRequest, "start"},
		{"/whep/" + stream + "?start=2099-01-01T00:00:00Z", http.StatusBadRequest, "future"},
		{"/whep/nosuch?start=-5s", http.StatusNotFound, "nosuch"},
		{"/whep/" + stream + "?start=-1s", http.StatusRequestedRangeNotSatisfiable, `stream "` + stream + `" holds `},
	} {
		resp, body := whepPost(t, ctx, s.nodeURL+c.path, newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio).offer(t))
		if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
			t.Fatalf("POST %s = %d %q, want %d %q", c.path, resp.StatusCode, body, c.status, c.body)
		}
	}

	v := newRTPViewer(t)
	posted := time.Now()
	whepPlay(t, ctx, s.nodeURL, stream+"?start=-12s", v.whepClient)
	// While it plays, a clip of the same ended stream from the node.
	checkClip(t, ctx, s.nodeURL+"/export/"+stream+".ts?from=-15s&to=-5s", 10*time.Second)
	select {
	case <-v.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the time-shifted session did not end at the end of the stream")
	}
	video, audio := v.packets(mimeH264), v.packets(mimeOpus)
	vc := checkContinuity(t, track{name: "time-shifted video", maxStep: 90000 / 2}, video)
	ac := checkContinuity(t, track{name: "time-shifted audio", audio: true, maxStep: 48000 / 2, nominal: 960}, audio)
	if !unitHasIDR(video) {
		t.Fatal("the time-shifted video does not start with a keyframe")
	}
	played := video[len(video)-1].at.Sub(video[0].at)
	media := time.Duration(video[len(video)-1].ts-video[0].ts) * time.Second / 90000
	t.Logf("played %s (RTP %s) of the ended stream from %s after the POST: video %+v, audio %+v",
		played, media, video[0].at.Sub(posted), vc, ac)
	if played < 8500*time.Millisecond || played > 11500*time.Millisecond {
		t.Fatalf("played %s, want about 10 s", played)
	}
	if r := played.Seconds() / media.Seconds(); r < 0.85 || r > 1.15 {
		t.Fatalf("played %s of %s of media: not real time (±15 %%)", played, media)
	}
	// Every frame once: 30 frames a second of media (more while the first
	// GOP is replayed fast, its timestamps in step: at most 1.5 s of
	// frames), 50 audio packets a second.
	if want := int(media.Seconds() * 30); vc.units < want*97/100 || vc.units > want+45 {
		t.Fatalf("%d video frames over %s, want about %d", vc.units, media, want)
	}
	if want := int(media.Seconds() * 50); ac.units < want*90/100 {
		t.Fatalf("%d audio packets over %s, want about %d", ac.units, media, want)
	}
}

// checkClip GETs an MPEG-TS clip and has ffprobe decode it: no error, the
// first video frame a keyframe, and about want of video (±1.5 s).
func checkClip(t *testing.T, ctx context.Context, url string, want time.Duration) {
	t.Helper()
	code, body, err := proctest.Get(ctx, url)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v %.200q", url, code, err, body)
	}
	file := filepath.Join(t.TempDir(), "clip.ts")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,nb_read_frames:frame=key_frame", "-read_intervals", "%+#1",
		"-of", "default=nw=1", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "codec_name=h264") || !strings.Contains(string(out), "key_frame=1") {
		t.Fatalf("ffprobe of the clip: %v, want an H.264 keyframe first:\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).CombinedOutput()
	// The stream is listed once under its program and once on its own.
	text := strings.TrimSpace(string(out))
	fields := strings.Fields(text)
	if len(fields) == 0 {
		t.Fatalf("ffprobe of the clip: %v: no frame count", err)
	}
	frames, perr := strconv.Atoi(fields[len(fields)-1])
	if err != nil || perr != nil || strings.Contains(text, "rror") {
		t.Fatalf("ffprobe of the clip: %v %v: %q", err, perr, text)
	}
	// The source is 30 fps.
	got := time.Duration(frames) * time.Second / 30
	t.Logf("clip %s: %d bytes, %d video frames (%s)", url, len(body), frames, got)
	if got < want-1500*time.Millisecond || got > want+1500*time.Millisecond {
		t.Fatalf("clip of %s of video, want about %s", got, want)
	}
}
