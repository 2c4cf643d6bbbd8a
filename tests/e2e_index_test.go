//go:build external

package tests

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whepcast/whepcast/pkg/bus"
)

// TestE2EIndexFollowsIngest opens the node's stream list, then ingests two
// streams with ffmpeg: "once" plays av.ts (6 s) to its end, "killed" loops
// it until ffmpeg is killed. Both appear while live and leave the list when
// their ingest ends, and the catalog marks them ended.
func TestE2EIndexFollowsIngest(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	if err := chromedp.Do(page, chromedp.Navigate(stack.nodeURL+"/")); err != nil {
		t.Fatal(err)
	}
	// The snapshot arrived: no stream yet.
	if err := waitJS(page, 10*time.Second, `document.body.dataset.count === '0'`); err != nil {
		t.Fatal(err)
	}

	once := stack.ingest(t, "once", "av.ts", false)
	onceStart := time.Now()
	killed := stack.ingest(t, "killed", "av.ts", true)
	listed := func(name string) string {
		return `(() => { const li = document.querySelector('li[data-stream="` + name + `"]');
			return !!li && !!li.querySelector('a.name[href="play/` + name + `"]') && /H264/.test(li.textContent) && /Opus/.test(li.textContent); })()`
	}
	if err := waitJS(page, 10*time.Second, listed("once")+` && `+listed("killed")+` && document.body.dataset.count === '2'`); err != nil {
		html, _ := evalJS[string](page, `document.getElementById('streams').outerHTML`)
		t.Fatalf("%v; list: %s", err, html)
	}
	for _, name := range []string{"once", "killed"} {
		if e := stack.catalogEntry(t, ctx, name); e.State != bus.StateLive {
			t.Errorf("catalog entry %s is %q while ffmpeg publishes, want %q", name, e.State, bus.StateLive)
		}
	}

	// A killed publisher: the broker sees the connection end.
	killed.Kill()
	killedAt := time.Now()
	gone := func(name string) string { return `!document.querySelector('li[data-stream="` + name + `"]')` }
	if err := waitJS(page, 10*time.Second, gone("killed")+` && `+listed("once")+` && document.body.dataset.count === '1'`); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed: left the list %v after SIGKILL", time.Since(killedAt).Round(time.Millisecond))
	if e := stack.catalogEntry(t, ctx, "killed"); e.State != bus.StateEnded {
		t.Errorf("catalog entry killed is %q after ffmpeg was killed, want %q", e.State, bus.StateEnded)
	}

	// A publisher that reaches the end of its file.
	select {
	case <-once.Done():
	case <-ctx.Done():
		t.Fatal("ffmpeg did not finish av.ts in time")
	}
	endedAt := time.Now()
	if err := once.Err(); err != nil {
		t.Fatalf("ffmpeg ingesting av.ts: %v\n%s", err, once.Output())
	}
	if err := waitJS(page, 10*time.Second, gone("once")+` && document.body.dataset.count === '0'`); err != nil {
		t.Fatal(err)
	}
	t.Logf("once: ffmpeg ended %v after its start; left the list %v later", endedAt.Sub(onceStart).Round(time.Millisecond), time.Since(endedAt).Round(time.Millisecond))
	e := stack.catalogEntry(t, ctx, "once")
	if e.State != bus.StateEnded {
		t.Errorf("catalog entry once is %q after ffmpeg finished, want %q", e.State, bus.StateEnded)
	}
	// The broker counted the whole file (av.ts.expect: 180 video frames,
	// 6 keyframes, 301 Opus packets).
	if e.Stats.Frames != 180+301 || e.Stats.Keyframes != 6 || e.Stats.DecodeErrors != 0 {
		t.Errorf("catalog stats of once %+v, want 481 frames, 6 keyframes, no decode error", e.Stats)
	}
	if names := stack.streams(t, ctx); len(names) != 0 {
		t.Errorf("the node lists %v after both ingests ended, want none", names)
	}
}
