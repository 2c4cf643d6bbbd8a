package player

import (
	"strings"
	"testing"
)

// TestPlayPageControls: the player page has the timeline (a range input
// over the retention window), the live button, the position and the clip
// link to the export of the last N seconds; its script reads the window
// from ../streams/{stream}, asks for position events and seeks at
// {Location}/seek.
func TestPlayPageControls(t *testing.T) {
	h := Handler(newFakeLister(avEntry("demo")), nil)
	page := get(t, h, "GET", "/play/demo").Body.String()
	for _, s := range []string{
		`<div id="timeline" class="timeline" data-window="unknown">`,
		`<input id="seek" class="seek" type="range" min="0" max="0" step="1" value="0" aria-label="Position in the retention window" disabled>`,
		`<span id="position" class="position" aria-live="off">live</span>`,
		`<button id="live" class="live" type="button" disabled>Live</button>`,
		`<input id="clip-seconds" class="clip-seconds" type="number" min="1" max="3600" step="1" value="30">`,
		`<a id="clip" class="clip" href="../export/demo.mp4?from=-30s" download="demo.mp4">Download clip</a>`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("player page lacks %s:\n%s", s, page)
		}
	}
	js := get(t, h, "GET", "/static/play.js").Body.String()
	for _, s := range []string{
		`'position'];`,                   // asked for among the events
		`es.addEventListener('position'`, // and read
		`fetch('../streams/' + encodeURIComponent(streamName)`,
		`fetch(s.location + '/seek'`,
		`JSON.stringify({ start: start })`,
		`seekTo('live')`,
		`'../export/' + encodeURIComponent(streamName) + '.mp4?from=-'`,
		`api.seek = function (start)`,
	} {
		if !strings.Contains(js, s) {
			t.Errorf("play.js lacks %s", s)
		}
	}
}
