package player

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// The catalog watcher is what the servers pass to Handler.
var _ Lister = (*bus.Watcher)(nil)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeLister is a Lister whose changes the test sends.
type fakeLister struct {
	mu     sync.Mutex
	live   []bus.CatalogEntry
	subs   map[chan bus.CatalogEntry]bool
	joined chan struct{} // receives one value per Subscribe
	left   chan struct{} // receives one value per stop
}

func newFakeLister(live ...bus.CatalogEntry) *fakeLister {
	return &fakeLister{
		live:   live,
		subs:   map[chan bus.CatalogEntry]bool{},
		joined: make(chan struct{}, 16),
		left:   make(chan struct{}, 16),
	}
}

func (f *fakeLister) Live() []bus.CatalogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bus.CatalogEntry(nil), f.live...)
}

func (f *fakeLister) Subscribe() (<-chan bus.CatalogEntry, func()) {
	ch := make(chan bus.CatalogEntry, 8)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	f.joined <- struct{}{}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
			f.left <- struct{}{}
		})
	}
}

// send delivers e to every subscriber.
func (f *fakeLister) send(e bus.CatalogEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		ch <- e
	}
}

// closeAll closes every subscriber's channel, as a stopped catalog does.
func (f *fakeLister) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		close(ch)
		delete(f.subs, ch)
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func avEntry(name string) bus.CatalogEntry {
	return bus.CatalogEntry{
		Stream:  name,
		Epoch:   1740830400000000001,
		State:   bus.StateLive,
		Started: t0,
		Updated: t0.Add(5 * time.Second),
		Tracks: bus.Announcement{
			Stream: name,
			Epoch:  1740830400000000001,
			Tracks: []tsframes.Track{
				{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01e"},
				{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true, Channels: 2, SampleRate: 48000},
			},
			Video: 256,
			Audio: 257,
		},
		Stats: bus.IngestStats{Bytes: 1000, Frames: 30, Keyframes: 1},
	}
}

func aacEntry(name string) bus.CatalogEntry {
	e := avEntry(name)
	e.Tracks.Tracks[1] = tsframes.Track{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, Channels: 2, SampleRate: 48000}
	e.Tracks.Audio = 0
	return e
}

func get(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestRoutes(t *testing.T) {
	h := Handler(newFakeLister(avEntry("demo"), aacEntry("cam_2")), nil)
	cases := []struct {
		method, target string
		status         int
		ctype          string
		contains       []string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", []string{`href="play/cam_2"`, `href="play/demo"`, "H264 (42c01e)", "Opus (2 ch, 48000 Hz)", "AAC audio cannot be played over WebRTC", `src="static/index.js"`, "2 live"}},
		{"GET", "/streams", 200, "application/json", []string{`"stream":"demo"`}},
		{"GET", "/play/demo", 200, "text/html; charset=utf-8", []string{`data-stream="demo"`, `data-state="connecting"`, `src="../static/play.js"`, `<video id="video" autoplay muted playsinline>`}},
		{"GET", "/play/Cam-1_x", 200, "text/html; charset=utf-8", []string{`data-stream="Cam-1_x"`}},
		{"GET", "/static/play.js", 200, "text/javascript; charset=utf-8", []string{"window.whepcast"}},
		{"GET", "/static/index.js", 200, "text/javascript; charset=utf-8", []string{"streams/events"}},
		{"GET", "/static/player.css", 200, "text/css; charset=utf-8", []string{".overlay"}},
		{"GET", "/play/bad.name", 404, "", nil},
		{"GET", "/play/" + strings.Repeat("a", 65), 404, "", nil},
		{"GET", "/play/%3Cscript%3E", 404, "", nil},
		{"GET", "/play/demo/", 404, "", nil},
		{"GET", "/play/", 404, "", nil},
		{"GET", "/static/", 404, "", nil},
		{"GET", "/static/missing.js", 404, "", nil},
		{"GET", "/whep/demo", 404, "", nil},
		{"GET", "/nope", 404, "", nil},
		{"POST", "/", 405, "", nil},
		{"DELETE", "/play/demo", 405, "", nil},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			rec := get(t, h, c.method, c.target)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, c.status, rec.Body.String())
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q, want %q", got, ContentSecurityPolicy)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := rec.Header().Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q", got)
			}
			if c.ctype != "" && rec.Header().Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), c.ctype)
			}
			for _, s := range c.contains {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, rec.Body.String())
				}
			}
		})
	}
}
