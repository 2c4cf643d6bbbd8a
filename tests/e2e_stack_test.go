//go:build external

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/internal/proctest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/whep"
)

// e2eTestTimeout bounds every end-to-end test once the binaries are built.
const e2eTestTimeout = 60 * time.Second

// e2eStart starts a process in the repository's root (proctest.Launch: its
// cleanup stops it and logs its output when the test failed).
func e2eStart(t *testing.T, name, bin string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Launch(t, proctest.Cmd{Name: name, Bin: bin, Args: args, Dir: ".."})
}

// e2eStack is a broker (embedded NATS, HTTP ingest) and a whep-node, both
// real binaries, on 127.0.0.1.
type e2eStack struct {
	ingestURL string // the broker's HTTP: /ingest/{stream}, /healthz, /metrics
	nodeURL   string // the whep-node's HTTP: /whep/, /play/, /, /sessions
	natsURL   string
	broker    *proctest.Proc
	node      *proctest.Proc
}

// startE2EStack builds the binaries (once per test run), then starts the
// broker, waits until it is healthy, starts the whep-node against its NATS
// server and waits until the node is ready. It returns the stack and a
// context that ends e2eTestTimeout after the build, or with the test. The
// cleanups stop both processes (node first) and check that they exit with
// status 0. brokerArgs are added to the broker's flags.
func startE2EStack(t *testing.T, brokerArgs ...string) (*e2eStack, context.Context) {
	t.Helper()
	brokerBin, nodeBin := e2eBin.get(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2eTestTimeout)
	t.Cleanup(cancel)
	logLevel := "info"
	if os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		logLevel = "debug"
	}
	s := &e2eStack{}
	ingestPort, natsPort := proctest.FreePort(t, "tcp"), proctest.FreePort(t, "tcp")
	s.ingestURL = fmt.Sprintf("http://127.0.0.1:%d", ingestPort)
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	s.broker = e2eStart(t, "broker", brokerBin, append([]string{
		"--ingest-addr", fmt.Sprintf("127.0.0.1:%d", ingestPort),
		"--rtmp-addr", "",
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--data-dir", t.TempDir(),
		"--log-level", logLevel}, brokerArgs...)...)
	t.Cleanup(func() { e2eCheckExit(t, s.broker) })
	s.broker.WaitHTTP(t, ctx, s.ingestURL+"/healthz", "ok\n")

	httpPort, icePort := proctest.FreePort(t, "tcp"), proctest.FreePort(t, "udp")
	s.nodeURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	s.node = e2eStart(t, "whep-node", nodeBin,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--ice-udp-addr", fmt.Sprintf("127.0.0.1:%d", icePort),
		"--nats-url", s.natsURL,
		"--wait-timeout", "20s",
		"--log-level", logLevel)
	// Cleanups run last-in first-out: the node stops before the broker.
	t.Cleanup(func() { e2eCheckExit(t, s.node) })
	s.node.WaitHTTP(t, ctx, s.nodeURL+"/healthz", "ok\n")
	s.node.WaitHTTP(t, ctx, s.nodeURL+"/readyz", "ready\n")
	return s, ctx
}

// e2eCheckExit stops p and fails the test unless it exits cleanly (status 0).
func e2eCheckExit(t *testing.T, p *proctest.Proc) {
	t.Helper()
	if err := p.Terminate(t); err != nil {
		t.Errorf("%s exited with %v after SIGTERM, want status 0", p.Name(), err)
	}
}

// ingest runs ffmpeg publishing testdata/fixture in real time (-re) as
// stream over HTTP PUT, looping the file forever when loop is set. The
// cleanup stops ffmpeg if it still runs.
func (s *e2eStack) ingest(t *testing.T, stream, fixture string, loop bool) *proctest.Proc {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is missing (%v): apt-get install -y ffmpeg", err)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re"}
	if loop {
		args = append(args, "-stream_loop", "-1")
	}
	args = append(args, "-i", filepath.Join("testdata", fixture), "-c", "copy", "-f", "mpegts",
		"-method", "PUT", s.ingestURL+"/ingest/"+stream)
	return e2eStart(t, "ffmpeg "+stream, ffmpeg, args...)
}

// liveIngest publishes a live H.264 (1 s GOP) + Opus source to the broker's
// ingest as stream, over HTTP PUT: ffmpeg encoding a test pattern and a
// tone in real time, for as long as the test runs. (A looped file would not
// do: ffmpeg's -stream_loop makes the audio overlap by all but one tick at
// each loop point.) The cleanup stops ffmpeg (SIGTERM: the body ends
// cleanly).
func liveIngest(t *testing.T, b *broker.Broker, stream string) *proctest.Proc {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is missing (%v): apt-get install -y ffmpeg", err)
	}
	return e2eStart(t, "ffmpeg "+stream, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "250k",
		"-c:a", "libopus", "-b:a", "32k", "-ac", "2", "-frame_duration", "20",
		"-f", "mpegts", "-method", "PUT", "http://"+b.IngestAddr().String()+"/ingest/"+stream)
}

// streams returns the node's live stream names (GET /streams).
func (s *e2eStack) streams(t *testing.T, ctx context.Context) []string {
	t.Helper()
	code, body, err := proctest.Get(ctx, s.nodeURL+"/streams")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /streams: %d %q %v", code, body, err)
	}
	var list []struct {
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /streams: %v: %q", err, body)
	}
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.Stream
	}
	return names
}

// waitLive waits until the node lists stream as live.
func (s *e2eStack) waitLive(t *testing.T, ctx context.Context, stream string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range s.streams(t, ctx) {
			if n == stream {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s not live on the node in time", stream)
		case <-tick.C:
		}
	}
}

// session returns the node's only session (GET /sessions), failing unless
// there is exactly one.
func (s *e2eStack) session(t *testing.T, ctx context.Context) whep.SessionInfo {
	t.Helper()
	code, body, err := proctest.Get(ctx, s.nodeURL+"/sessions")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /sessions: %d %q %v", code, body, err)
	}
	var list []whep.SessionInfo
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /sessions: %v: %q", err, body)
	}
	if len(list) != 1 {
		t.Fatalf("%d sessions on the node, want 1: %s", len(list), body)
	}
	return list[0]
}

// catalogEntry reads stream's entry from the broker's catalog over NATS.
func (s *e2eStack) catalogEntry(t *testing.T, ctx context.Context, stream string) bus.CatalogEntry {
	t.Helper()
	nc, err := nats.Connect(s.natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to the broker's NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := bus.OpenCatalog(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cat.Get(ctx, stream)
	if err != nil {
		t.Fatalf("catalog entry %s: %v", stream, err)
	}
	return e
}

// e2eStats is what the tests read of window.whepcast.refreshStats().
type e2eStats struct {
	State  string  `json:"state"`
	TTFFMs *int    `json:"ttffMs"`
	At     float64 `json:"at"`
	Video  *struct {
		Width                    int     `json:"width"`
		Height                   int     `json:"height"`
		FramesDecoded            float64 `json:"framesDecoded"`
		FramesReceived           float64 `json:"framesReceived"`
		FramesDropped            float64 `json:"framesDropped"`
		KeyFramesDecoded         float64 `json:"keyFramesDecoded"`
		PacketsReceived          float64 `json:"packetsReceived"`
		PacketsLost              float64 `json:"packetsLost"`
		JitterBufferDelay        float64 `json:"jitterBufferDelay"`
		JitterBufferEmittedCount float64 `json:"jitterBufferEmittedCount"`
		JitterBufferTargetDelay  float64 `json:"jitterBufferTargetDelay"`
		Jitter                   float64 `json:"jitter"`
		FreezeCount              float64 `json:"freezeCount"`
		TotalFreezesDuration     float64 `json:"totalFreezesDuration"`
		PauseCount               float64 `json:"pauseCount"`
		Codec                    string  `json:"codec"`
	} `json:"video"`
	Audio *struct {
		PacketsReceived          float64 `json:"packetsReceived"`
		PacketsLost              float64 `json:"packetsLost"`
		TotalAudioEnergy         float64 `json:"totalAudioEnergy"`
		TotalSamplesDuration     float64 `json:"totalSamplesDuration"`
		ConcealedSamples         float64 `json:"concealedSamples"`
		Jitter                   float64 `json:"jitter"`
		JitterBufferDelay        float64 `json:"jitterBufferDelay"`
		JitterBufferEmittedCount float64 `json:"jitterBufferEmittedCount"`
		Codec                    string  `json:"codec"`
	} `json:"audio"`
}

// e2eTiming is window.whepcast.timing: performance.now() marks in ms since
// the navigation start, null until reached.
type e2eTiming struct {
	Start          *float64 `json:"start"`
	Post           *float64 `json:"post"`
	Response       *float64 `json:"response"`
	Connected      *float64 `json:"connected"`
	FirstFrame     *float64 `json:"firstFrame"`
	FirstFrameMeta *struct {
		PresentationTime    *float64 `json:"presentationTime"`
		ExpectedDisplayTime *float64 `json:"expectedDisplayTime"`
		ReceiveTime         *float64 `json:"receiveTime"`
		ProcessingDuration  *float64 `json:"processingDuration"`
		RTPTimestamp        *float64 `json:"rtpTimestamp"`
	} `json:"firstFrameMeta"`
}

// e2eRefreshStats samples getStats in the page.
func e2eRefreshStats(t *testing.T, ctx context.Context) e2eStats {
	t.Helper()
	st, err := evalJS[e2eStats](ctx, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatalf("refreshStats: %v", err)
	}
	return st
}

// play opens the node's player page of stream and waits until it plays.
func (s *e2eStack) play(t *testing.T, ctx context.Context, stream string, timeout time.Duration) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(s.nodeURL+"/play/"+stream)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, timeout, `document.body.dataset.state === 'playing'`); err != nil {
		st, _ := evalJS[map[string]any](ctx, `({state: whepcast.state, message: whepcast.message, attempts: whepcast.attempts})`)
		t.Fatalf("%v; player: %v", err, st)
	}
}

// e2eUnmute clicks the player's Unmute button (Chrome reports no audio energy
// for a muted element) and waits until the element is unmuted.
func e2eUnmute(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("unmute"))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 5*time.Second, `!document.getElementById('video').muted && document.getElementById('unmute').textContent === 'Mute'`); err != nil {
		t.Fatal(err)
	}
}

// e2eSample is one sample of a measurement window: the page's stats and,
// just before, the node's stats of the session.
type e2eSample struct {
	at    time.Time
	node  whep.SessionInfo
	stats e2eStats
}

// sampleWindow samples the node's session and the page's stats n+1 times,
// every interval (the window's own clock), the first sample at once.
func (s *e2eStack) sampleWindow(t *testing.T, ctx context.Context, n int, every time.Duration) (samples []e2eSample) {
	t.Helper()
	sample := func() {
		node := s.session(t, ctx)
		samples = append(samples, e2eSample{at: time.Now(), node: node, stats: e2eRefreshStats(t, ctx)})
	}
	sample()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for len(samples) <= n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("measurement window: %v", ctx.Err())
		}
		sample()
	}
	t.Logf("load average during the window: %s", e2eLoadAverage())
	return samples
}

// e2eLoadAverage returns the machine's load averages (1, 5, 15 min) from
// /proc/loadavg, or why not.
func e2eLoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// e2eCheckVideo checks that the node sent about 30 frames per second over
// the window, that framesDecoded grew between every two samples and that the
// frames decoded are at least 90 % of the frames the node sent. It logs the
// freezes Chrome counted (see e2eCheckNoFreeze).
func e2eCheckVideo(t *testing.T, samples []e2eSample) {
	t.Helper()
	first, last := samples[0].node, samples[len(samples)-1].node
	var steps, sentSteps []string
	for i, sm := range samples {
		if sm.stats.Video == nil {
			t.Fatalf("sample %d has no inbound video: %+v", i, sm.stats)
		}
		if i > 0 {
			d := sm.stats.Video.FramesDecoded - samples[i-1].stats.Video.FramesDecoded
			steps = append(steps, strconv.FormatFloat(d, 'f', 0, 64))
			sentSteps = append(sentSteps, strconv.FormatUint(sm.node.Stats.Video.Frames-samples[i-1].node.Stats.Video.Frames, 10))
			if d <= 0 {
				t.Errorf("sample %d (%v after the previous): framesDecoded %v, did not grow (frozen)",
					i, sm.at.Sub(samples[i-1].at).Round(time.Millisecond), sm.stats.Video.FramesDecoded)
			}
		}
	}
	a, b := samples[0].stats.Video, samples[len(samples)-1].stats.Video
	window := samples[len(samples)-1].at.Sub(samples[0].at)
	decoded := b.FramesDecoded - a.FramesDecoded
	sent := float64(last.Stats.Video.Frames - first.Stats.Video.Frames)
	t.Logf("video window %v: %.0f frames sent by the node (nominal %.0f at 30 fps), %.0f decoded (%.1f %%); per sample sent %s, decoded %s; "+
		"dropped %.0f, packets lost %.0f, freezes %.0f (%.3f s) in the window, %.0f in all; interarrival jitter %.1f ms; %dx%d %s",
		window.Round(time.Millisecond), sent, 30*window.Seconds(), decoded, 100*decoded/max(sent, 1), strings.Join(sentSteps, ","), strings.Join(steps, ","),
		b.FramesDropped-a.FramesDropped, b.PacketsLost-a.PacketsLost, b.FreezeCount-a.FreezeCount,
		b.TotalFreezesDuration-a.TotalFreezesDuration, b.FreezeCount, 1000*b.Jitter, b.Width, b.Height, b.Codec)
	if sent < 0.9*30*window.Seconds() {
		t.Errorf("the node sent %.0f video frames in %v, want about 30 per second", sent, window)
	}
	if decoded < 0.9*sent {
		t.Errorf("%.0f frames decoded of %.0f sent in the window, want at least 90 %%", decoded, sent)
	}
}

// e2eCheckNoFreeze checks that Chrome counted no video freeze (freezeCount)
// from the start of playback to the end of the window.
func e2eCheckNoFreeze(t *testing.T, samples []e2eSample) {
	t.Helper()
	a, b := samples[0].stats.Video, samples[len(samples)-1].stats.Video
	if a == nil || b == nil {
		t.Fatalf("no inbound video: %+v then %+v", samples[0].stats, samples[len(samples)-1].stats)
	}
	if b.FreezeCount != 0 {
		t.Errorf("freezeCount %v at the end of the window (%v at its start; %.3f s frozen in all), want no freeze since the start",
			b.FreezeCount, a.FreezeCount, b.TotalFreezesDuration)
	}
}

// e2eCheckPicture checks that the video shows the test pattern (width x height,
// not black, not flat).
func e2eCheckPicture(t *testing.T, ctx context.Context, width, height int) {
	t.Helper()
	pic, err := evalJS[videoPicture](ctx, pictureJS)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("picture: %dx%d, luma mean %.1f, stddev %.1f", pic.Width, pic.Height, pic.Mean, pic.Stddev)
	if pic.Width != width || pic.Height != height || pic.Mean < 20 || pic.Stddev < 20 {
		t.Errorf("picture %+v: want %dx%d with luma mean and stddev of at least 20 (not black, not flat)", pic, width, height)
	}
}

// e2eCheckAudio checks that audio packets arrived and audio energy grew
// over the window, and that the packets received are at least 90 % of the
// Opus packets the node sent.
func e2eCheckAudio(t *testing.T, samples []e2eSample) {
	t.Helper()
	first, last := samples[0].node, samples[len(samples)-1].node
	a, b := samples[0].stats.Audio, samples[len(samples)-1].stats.Audio
	if a == nil || b == nil {
		t.Fatalf("no inbound audio: %+v then %+v", samples[0].stats, samples[len(samples)-1].stats)
	}
	window := samples[len(samples)-1].at.Sub(samples[0].at)
	sent := float64(last.Stats.Audio.Frames - first.Stats.Audio.Frames)
	received := b.PacketsReceived - a.PacketsReceived
	t.Logf("audio window %v: %.0f packets sent by the node (nominal %.0f at 50/s), %.0f received, lost %.0f; energy %.4f -> %.4f, samples %.2f s -> %.2f s, concealed %.0f; interarrival jitter %.1f ms; %s",
		window.Round(time.Millisecond), sent, 50*window.Seconds(), received, b.PacketsLost-a.PacketsLost,
		a.TotalAudioEnergy, b.TotalAudioEnergy, a.TotalSamplesDuration, b.TotalSamplesDuration,
		b.ConcealedSamples-a.ConcealedSamples, 1000*b.Jitter, b.Codec)
	if b.TotalAudioEnergy <= 0 || b.TotalAudioEnergy <= a.TotalAudioEnergy {
		t.Errorf("audio energy %v then %v, want > 0 and growing", a.TotalAudioEnergy, b.TotalAudioEnergy)
	}
	if sent < 0.9*50*window.Seconds() {
		t.Errorf("the node sent %.0f Opus packets in %v, want about 50 per second", sent, window)
	}
	if received <= 0 || received < 0.9*sent {
		t.Errorf("%.0f audio packets received of %.0f sent in the window, want at least 90 %%", received, sent)
	}
}

// e2eBrowser starts Chromium (startChromium) and returns its tab's context,
// ending with ctx.
func e2eBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab := startChromium(t)
	deadline, _ := ctx.Deadline()
	tab, cancel := context.WithDeadline(tab, deadline)
	t.Cleanup(cancel)
	return tab
}
