//go:build external

package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// listItem is one stream of the list page as Chromium renders it.
type listItem struct {
	Protocol string `json:"protocol"`
	Bitrate  string `json:"bitrate"`
	Health   string `json:"health"`
	Viewers  string `json:"viewers"`
	DVR      string `json:"dvr"`
}

// TestE2EStreamListDetails: with the broker and whep-node binaries, the
// list page shows a stream published over HTTP with its protocol, its
// bitrate, health ok, the viewers across the nodes (none) and how far back
// it can be played, and keeps them current from the events.
func TestE2EStreamListDetails(t *testing.T) {
	checkLeaks(t)
	stack, ctx := startE2EStack(t)
	page := e2eBrowser(t, ctx)
	if err := chromedp.Do(page, chromedp.Navigate(stack.nodeURL+"/")); err != nil {
		t.Fatal(err)
	}
	stack.ingest(t, "cam", "av.ts", true)
	item := `(() => {
		const li = document.querySelector('li[data-stream="cam"]');
		const text = (cls) => { const e = li && li.querySelector('.' + cls); return e ? e.textContent : ''; };
		return {protocol: text('protocol'), bitrate: text('bitrate'), health: text('health'), viewers: text('viewers'), dvr: text('dvr')};
	})()`
	// The catalog's first refresh (2 s) gives the bitrate; the bus holds a
	// keyframe at once.
	if err := waitJS(page, 20*time.Second, `(() => { const li = document.querySelector('li[data-stream="cam"]');
		return !!li && li.querySelector('.protocol') !== null && li.querySelector('.dvr') !== null &&
			li.querySelector('.viewers') !== null && !/^0 b/.test(li.querySelector('.bitrate').textContent); })()`); err != nil {
		got, _ := evalJS[listItem](page, item)
		t.Fatalf("%v; list item %+v", err, got)
	}
	got, err := evalJS[listItem](page, item)
	if err != nil {
		t.Fatal(err)
	}
	if got.Protocol != "http" || got.Health != "ok" || got.Viewers != "0 watching" {
		t.Fatalf("list item %+v, want protocol http, health ok, 0 watching", got)
	}
	// The page follows the window as it grows (from the catalog's events).
	var first int
	if _, err := fmt.Sscanf(got.DVR, "%d s back", &first); err != nil {
		t.Fatalf("DVR %q: %v", got.DVR, err)
	}
	if err := waitJS(page, 20*time.Second, fmt.Sprintf(`parseInt(document.querySelector('li[data-stream="cam"] .dvr').textContent, 10) >= %d`, first+4)); err != nil {
		got, _ := evalJS[listItem](page, item)
		t.Fatalf("%v; list item %+v", err, got)
	}
	later, _ := evalJS[listItem](page, item)
	t.Logf("list item: %+v, later %+v", got, later)
}
