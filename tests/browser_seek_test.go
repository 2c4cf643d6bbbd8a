//go:build external

package tests

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// seekState is what the test reads of the player while it seeks.
type seekState struct {
	Live    *bool    `json:"live"`
	LagMS   *float64 `json:"lagMs"`
	Decoded float64  `json:"decoded"`
	Seek    *struct {
		Start  string `json:"start"`
		Status int    `json:"status"`
	} `json:"seek"`
	Window *struct {
		Seconds float64 `json:"seconds"`
	} `json:"window"`
}

const seekStateJS = `(async () => {
	const s = await whepcast.refreshStats();
	const p = whepcast.position;
	return {live: p ? p.live : null, lagMs: p ? p.lag_ms : null,
		decoded: s && s.video ? s.video.framesDecoded : 0,
		seek: whepcast.lastSeek, window: whepcast.window};
})()`

// TestBrowserSeekBackAndLive plays the live demo stream in the built-in
// player, seeks 10 s back on the same session, then returns to live: the
// position events follow (not live, about 10 s behind; then live) and
// frames keep decoding at each step.
func TestBrowserSeekBackAndLive(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(stack.url+"/play/demo")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 30*time.Second, `document.body.dataset.state === 'playing'`); err != nil {
		t.Fatal(err)
	}
	// The timeline knows the retention window once the bus holds 12 s.
	if err := waitJS(ctx, 40*time.Second, `whepcast.window !== null && whepcast.window.seconds >= 12 && whepcast.position !== null && whepcast.position.live === true`); err != nil {
		st, _ := evalJS[seekState](ctx, seekStateJS)
		t.Fatalf("%v; player %+v", err, st)
	}
	decodingGoesOn := func(step string) {
		t.Helper()
		before, err := evalJS[seekState](ctx, seekStateJS)
		if err != nil {
			t.Fatal(err)
		}
		// 3 s of the 30 fps demo: at least 60 more frames decoded.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(10 * time.Second)
		for {
			st, err := evalJS[seekState](ctx, seekStateJS)
			if err != nil {
				t.Fatal(err)
			}
			if st.Decoded >= before.Decoded+60 {
				return
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("%s: frames stopped decoding: %+v, before %+v", step, st, before)
			}
		}
	}
	decodingGoesOn("live")

	sessions := len(stack.whep.Sessions())
	if status, err := evalJS[int](ctx, `whepcast.seek('-10s')`); err != nil || status != 204 {
		t.Fatalf("seek -10s: status %d, %v", status, err)
	}
	if err := waitJS(ctx, 10*time.Second, `whepcast.position !== null && whepcast.position.live === false && whepcast.position.lag_ms >= 8000 && whepcast.position.lag_ms <= 13000`); err != nil {
		st, _ := evalJS[seekState](ctx, seekStateJS)
		t.Fatalf("after seeking 10 s back: %v; player %+v", err, st)
	}
	decodingGoesOn("10 s back")
	if n := len(stack.whep.Sessions()); n != sessions {
		t.Fatalf("%d sessions after the seek, %d before: want the same session", n, sessions)
	}

	if status, err := evalJS[int](ctx, `whepcast.seek('live')`); err != nil || status != 204 {
		t.Fatalf("seek live: status %d, %v", status, err)
	}
	if err := waitJS(ctx, 10*time.Second, `whepcast.position !== null && whepcast.position.live === true`); err != nil {
		st, _ := evalJS[seekState](ctx, seekStateJS)
		t.Fatalf("after going back to live: %v; player %+v", err, st)
	}
	decodingGoesOn("back to live")
	if st, err := evalJS[string](ctx, `document.body.dataset.state`); err != nil || st != "playing" {
		t.Fatalf("player state %q (%v), want playing", st, err)
	}
}
