//go:build external

package tests

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whepcast/whepcast/pkg/ingest/whip"
)

// TestChromiumPublishesOverWHIP: Chromium's fake camera and microphone
// publish through the broker's /publish page over WHIP; the stream plays in
// a second tab through a whep-node's player, its video decoded and its
// audio audible.
func TestChromiumPublishesOverWHIP(t *testing.T) {
	checkLeaks(t)
	connect := whepBus(t)
	nodeURL := whepNode(t, connect(), nil)

	h := whipHandler(t, connect())
	mux := http.NewServeMux()
	mux.Handle(whip.PublishPrefix, whip.PublishPage())
	srv := httptest.NewServer(h.InFrontOf(mux))
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})

	ctx := startChromiumWith(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/publish/cam1?autostart=1")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 30*time.Second, `document.getElementById('state').textContent === 'live'`); err != nil {
		state, _ := evalJS[string](ctx, `document.getElementById('state').textContent`)
		t.Fatalf("%v; publish page: %q", err, state)
	}

	// The player, in a second tab of the same browser.
	play, cancelPlay := chromedp.NewContext(ctx)
	defer cancelPlay()
	if err := chromedp.Do(play, chromedp.Navigate(nodeURL+"/play/cam1")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(play, 30*time.Second, `document.body.dataset.state === 'playing' && whepcast.ttffMs !== null`); err != nil {
		st, _ := evalJS[map[string]any](play, `({state: whepcast.state, message: whepcast.message})`)
		t.Fatalf("%v; player: %v", err, st)
	}
	if err := chromedp.Do(play, chromedp.Click(chromedp.ID("unmute"))); err != nil {
		t.Fatal(err)
	}
	s1, err := evalJS[playStats](play, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-time.After(3 * time.Second): // the measurement window itself
	case <-play.Done():
		t.Fatal(play.Err())
	}
	s2, err := evalJS[playStats](play, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Video == nil || s2.Video == nil || s2.Audio == nil {
		t.Fatalf("stats without video or audio: %+v %+v", s1, s2)
	}
	decoded := s2.Video.FramesDecoded - s1.Video.FramesDecoded
	t.Logf("3 s window: %.0f frames decoded, %dx%d %s; audio %s energy %.4f", decoded,
		s2.Video.Width, s2.Video.Height, s2.Video.Codec, s2.Audio.Codec, s2.Audio.TotalAudioEnergy)
	if decoded < 30 {
		t.Errorf("%.0f frames decoded in 3 s, want at least 30", decoded)
	}
	if s2.Audio.TotalAudioEnergy <= s1.Audio.TotalAudioEnergy {
		t.Errorf("audio energy %v then %v, want growing (the fake microphone beeps)", s1.Audio.TotalAudioEnergy, s2.Audio.TotalAudioEnergy)
	}

	// Stop: the page DELETEs its resource, the publication ends.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("stop"))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 10*time.Second, `document.getElementById('state').textContent === 'stopped'`); err != nil {
		t.Fatal(err)
	}
	whepWait(t, ctx, "the WHIP resource to end", func() bool { return h.Publishers() == 0 })
}
