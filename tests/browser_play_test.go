//go:build external

package tests

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/demo"
	"github.com/whepcast/whepcast/pkg/player"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/tsframes"
	"github.com/whepcast/whepcast/pkg/whep"
)

// browserStack is the whole chain in one process: an embedded NATS
// (JetStream), the bundled demo clip published in real time as stream
// "demo", a catalog watcher, a relay, a WHEP server and the player pages,
// all on 127.0.0.1.
type browserStack struct {
	url        string // the HTTP server: / (player) and /whep/
	whep       *whep.Server
	metrics    *prometheus.Registry // the WHEP server's metrics
	videoSent  atomic.Int64         // video frames handed to the bus
	audioSent  atomic.Int64
	firstFrame chan struct{} // closed when the first frame is published
}

// countingPublisher counts the frames demo.Loop publishes.
type countingPublisher struct {
	*bus.Publisher
	s    *browserStack
	once atomic.Bool
}

func (p *countingPublisher) Publish(ctx context.Context, f tsframes.Frame) error {
	err := p.Publisher.Publish(ctx, f)
	if err == nil {
		if f.Kind == tsframes.KindVideo {
			p.s.videoSent.Add(1)
		} else {
			p.s.audioSent.Add(1)
		}
		if p.once.CompareAndSwap(false, true) {
			close(p.s.firstFrame)
		}
	}
	return err
}

func startBrowserStack(t *testing.T) *browserStack {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	nc := natstest.EmbeddedConn(t)

	s := &browserStack{firstFrame: make(chan struct{}), metrics: prometheus.NewRegistry()}

	// The publisher side: the demo clip, looping in real time.
	pub, err := bus.NewPublisher(ctx, nc, demo.StreamName, bus.PublisherConfig{
		Stream: bus.StreamConfig{Storage: bus.StorageMemory}, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() {
		loopDone <- demo.Loop(loopCtx, &countingPublisher{Publisher: pub, s: s}, demo.Options{Logger: logger})
	}()
	t.Cleanup(func() {
		stopLoop()
		if err := <-loopDone; !errors.Is(err, context.Canceled) {
			t.Errorf("demo.Loop returned %v", err)
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pub.Shutdown(closeCtx); err != nil {
			t.Errorf("closing the publisher: %v", err)
		}
	})

	// The playback side.
	// The watch lives as long as the test: nats.go ties a KV watch to the
	// context it was started with.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	watcher, err := bus.WatchCatalog(watchCtx, nc, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watcher.Close)
	rel, err := relay.New(relay.Config{Conn: nc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rel.Close)
	ws, err := whep.New(whep.Config{
		ICEUDPAddr: "127.0.0.1:0", WaitTimeout: 10 * time.Second, MaxWaiting: 8,
	}, whep.Deps{Conn: nc, Catalog: watcher, Media: whep.FromRelay(rel), Logger: logger, Registerer: s.metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ws.Close(); err != nil {
			t.Errorf("closing the WHEP server: %v", err)
		}
	})
	s.whep = ws

	mux := http.NewServeMux()
	mux.Handle("/whep/", ws.Handler())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The player's timeline: how far back the bus holds the stream.
	mux.Handle("/", player.NewHandler(watcher, logger, player.Options{Retention: player.NewBusRetention(js)}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL

	select {
	case <-s.firstFrame:
	case <-ctx.Done():
		t.Fatal("the demo clip published nothing within 20 s")
	}
	return s
}

// playStats is what the test reads of window.whepcast.refreshStats().
type playStats struct {
	State  string   `json:"state"`
	TTFFMs *float64 `json:"ttffMs"`
	At     float64  `json:"at"`
	Video  *struct {
		Width, Height  int
		FramesDecoded  float64 `json:"framesDecoded"`
		FramesDropped  float64 `json:"framesDropped"`
		PacketsLost    float64 `json:"packetsLost"`
		JitterBufferMs *float64
		Codec          string `json:"codec"`
	} `json:"video"`
	Audio *struct {
		TotalAudioEnergy     float64 `json:"totalAudioEnergy"`
		TotalSamplesDuration float64 `json:"totalSamplesDuration"`
		PacketsReceived      float64 `json:"packetsReceived"`
		Codec                string  `json:"codec"`
	} `json:"audio"`
}

// pictureJS draws the <video> into a canvas and returns the mean and the
// standard deviation of its luma (0-255).
const pictureJS = `(() => {
	const v = document.getElementById('video');
	const w = 160, h = 90;
	const c = document.createElement('canvas');
	c.width = w; c.height = h;
	const g = c.getContext('2d', {willReadFrequently: true});
	g.drawImage(v, 0, 0, w, h);
	const d = g.getImageData(0, 0, w, h).data;
	let sum = 0, sq = 0;
	const n = w * h;
	for (let i = 0; i < d.length; i += 4) {
		const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
		sum += y; sq += y * y;
	}
	const mean = sum / n;
	return {mean: mean, stddev: Math.sqrt(Math.max(0, sq / n - mean * mean)), width: v.videoWidth, height: v.videoHeight};
})()`

type videoPicture struct {
	Mean, Stddev  float64
	Width, Height int
}

func TestBrowserPlaysH264Opus(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	ctx := startChromium(t)

	// The list page shows the live demo stream from the real catalog; its
	// link opens the player.
	if err := chromedp.Do(ctx, chromedp.Navigate(stack.url+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 10*time.Second, `(() => { const li = document.querySelector('li[data-stream="demo"]');
		return li && li.querySelector('a.name') && /H264 \(42c01e\)/.test(li.textContent) && /Opus \(2 ch, 48000 Hz\)/.test(li.textContent) && !li.querySelector('.note'); })()`); err != nil {
		html, _ := evalJS[string](ctx, `document.getElementById('streams').outerHTML`)
		t.Fatalf("%v; list: %s", err, html)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`li[data-stream="demo"] a.name`)))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 10*time.Second, `location.pathname === '/play/demo' && document.body.dataset.stream === 'demo'`); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 30*time.Second, `document.body.dataset.state === 'playing' && whepcast.ttffMs !== null`); err != nil {
		st, _ := evalJS[map[string]any](ctx, `({state: whepcast.state, message: whepcast.message, attempts: whepcast.attempts})`)
		t.Fatalf("%v; player: %v", err, st)
	}
	ttff, err := evalJS[float64](ctx, `whepcast.ttffMs`)
	if err != nil {
		t.Fatal(err)
	}
	if ttff <= 0 || ttff > 15000 {
		t.Errorf("time to first frame %v ms, want within (0, 15000]", ttff)
	}
	t.Logf("time to first frame: %.0f ms", ttff)
	if n := len(stack.whep.Sessions()); n != 1 {
		t.Errorf("%d WHEP sessions, want 1", n)
	}

	// Unmute: Chrome reports no audio energy for a muted element. The
	// button's label follows.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("unmute"))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 5*time.Second, `!document.getElementById('video').muted && document.getElementById('unmute').textContent === 'Mute'`); err != nil {
		t.Fatal(err)
	}

	// A 5 s window: frames decoded against frames sent.
	s1, err := evalJS[playStats](ctx, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatal(err)
	}
	sent1 := stack.videoSent.Load()
	select {
	case <-time.After(5 * time.Second): // the measurement window itself
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	s2, err := evalJS[playStats](ctx, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatal(err)
	}
	sent := stack.videoSent.Load() - sent1
	if s1.Video == nil || s2.Video == nil || s2.Audio == nil {
		t.Fatalf("stats without video or audio: %+v %+v", s1, s2)
	}
	decoded := s2.Video.FramesDecoded - s1.Video.FramesDecoded
	t.Logf("window: %d video frames sent, %.0f decoded, %.0f dropped, %.0f packets lost; %dx%d %s; audio %s energy %.3f over %.1f s",
		sent, decoded, s2.Video.FramesDropped, s2.Video.PacketsLost, s2.Video.Width, s2.Video.Height, s2.Video.Codec,
		s2.Audio.Codec, s2.Audio.TotalAudioEnergy, s2.Audio.TotalSamplesDuration)
	if sent < 120 {
		t.Errorf("only %d video frames sent in 5 s, want about 150 (30 fps)", sent)
	}
	if decoded < 0.9*float64(sent) {
		t.Errorf("%.0f frames decoded of %d sent in the window, want at least 90 %%", decoded, sent)
	}
	if s2.Video.Width != 640 || s2.Video.Height != 360 {
		t.Errorf("video %dx%d, want 640x360", s2.Video.Width, s2.Video.Height)
	}
	if s2.Audio.TotalAudioEnergy <= 0 || s2.Audio.TotalAudioEnergy <= s1.Audio.TotalAudioEnergy {
		t.Errorf("audio energy %v then %v, want > 0 and growing", s1.Audio.TotalAudioEnergy, s2.Audio.TotalAudioEnergy)
	}
	if s2.Audio.PacketsReceived <= s1.Audio.PacketsReceived {
		t.Errorf("audio packets %v then %v, want growing", s1.Audio.PacketsReceived, s2.Audio.PacketsReceived)
	}

	// The picture is the test pattern, not black.
	pic, err := evalJS[videoPicture](ctx, pictureJS)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("picture: luma mean %.1f, stddev %.1f", pic.Mean, pic.Stddev)
	if pic.Width != 640 || pic.Height != 360 || pic.Mean < 20 || pic.Stddev < 20 {
		t.Errorf("picture %+v: want 640x360 with luma mean and stddev of at least 20 (not black, not flat)", pic)
	}

	if dir := os.Getenv("WHEPCAST_SCREENSHOT_DIR"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(dir+"/player.png", png, 0o644)
		}
		if err != nil {
			t.Logf("screenshot: %v", err)
		}
	}

	// Leaving the page DELETEs the session.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(stack.whep.Sessions()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d WHEP sessions 10 s after leaving the page, want 0", len(stack.whep.Sessions()))
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}
