//go:build external

package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// timelineState is what the test reads of the player's timeline.
type timelineState struct {
	SeekDisabled bool    `json:"seekDisabled"`
	SeekMax      float64 `json:"seekMax"`
	LiveDisabled bool    `json:"liveDisabled"`
	Position     string  `json:"position"`
	Clip         string  `json:"clip"`
	LastSeek     *struct {
		Start  string `json:"start"`
		Status int    `json:"status"`
	} `json:"lastSeek"`
	Live  *bool    `json:"live"`
	LagMS *float64 `json:"lagMs"`
}

const timelineStateJS = `(() => {
	const $ = (id) => document.getElementById(id);
	const p = whepcast.position;
	return {seekDisabled: $('seek').disabled, seekMax: Number($('seek').max), liveDisabled: $('live').disabled,
		position: $('position').textContent, clip: $('clip').href, lastSeek: whepcast.lastSeek,
		live: p ? p.live : null, lagMs: p ? p.lag_ms : null};
})()`

// TestBrowserTimelineControls drives the player's own controls in
// Chromium: dropping the timeline's handle 10 s before its end seeks the
// session to that RFC 3339 time (position events about 10 s behind, the
// Live button enabled), the Live button returns to live, and the clip link
// follows the number of seconds asked for.
func TestBrowserTimelineControls(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(stack.url+"/play/demo")); err != nil {
		t.Fatal(err)
	}
	state := func() timelineState {
		t.Helper()
		st, err := evalJS[timelineState](ctx, timelineStateJS)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if err := waitJS(ctx, 40*time.Second, `document.body.dataset.state === 'playing' && whepcast.window !== null &&
		whepcast.window.seconds >= 12 && !document.getElementById('seek').disabled &&
		whepcast.position !== null && whepcast.position.live === true`); err != nil {
		t.Fatalf("%v; timeline %+v", err, state())
	}
	if st := state(); !st.LiveDisabled || !strings.HasPrefix(st.Position, "live") {
		t.Fatalf("live: the Live button is enabled or the position is not live: %+v", st)
	}

	// Drag: the handle dropped 10 s before the end of the window.
	before := time.Now()
	if _, err := evalJS[string](ctx, `(() => {
		const s = document.getElementById('seek');
		s.value = String(Number(s.max) - 10);
		s.dispatchEvent(new Event('input'));
		s.dispatchEvent(new Event('change'));
		return s.value;
	})()`); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 10*time.Second, `whepcast.lastSeek !== null && whepcast.lastSeek.status !== undefined`); err != nil {
		t.Fatalf("%v; timeline %+v", err, state())
	}
	st := state()
	at, err := time.Parse(time.RFC3339Nano, st.LastSeek.Start)
	if err != nil || st.LastSeek.Status != 204 {
		t.Fatalf("the drop sought %q (%v), status %d; want an RFC 3339 time and 204", st.LastSeek.Start, err, st.LastSeek.Status)
	}
	if back := before.Sub(at); back < 8*time.Second || back > 13*time.Second {
		t.Fatalf("the drop sought %v, %v before the drop; want about 10 s", at, back)
	}
	if err := waitJS(ctx, 10*time.Second, `whepcast.position.live === false && whepcast.position.lag_ms >= 7000 &&
		whepcast.position.lag_ms <= 14000 && !document.getElementById('live').disabled &&
		document.getElementById('position').textContent.includes('behind live')`); err != nil {
		t.Fatalf("after the drop: %v; timeline %+v", err, state())
	}

	// Live.
	if _, err := evalJS[bool](ctx, `(document.getElementById('live').click(), true)`); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 10*time.Second, `whepcast.lastSeek.start === 'live' && whepcast.lastSeek.status === 204 &&
		whepcast.position.live === true && document.getElementById('live').disabled`); err != nil {
		t.Fatalf("after Live: %v; timeline %+v", err, state())
	}

	// The clip link.
	clip, err := evalJS[string](ctx, `(() => {
		const n = document.getElementById('clip-seconds');
		n.value = '12';
		n.dispatchEvent(new Event('input'));
		return document.getElementById('clip').href;
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if want := stack.url + "/export/demo.mp4?from=-12s"; clip != want {
		t.Fatalf("clip link %q, want %q", clip, want)
	}
	if st, err := evalJS[string](ctx, `document.body.dataset.state`); err != nil || st != "playing" {
		t.Fatalf("player state %q (%v), want playing", st, err)
	}
}
