//go:build external

package tests

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/player"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// fakeWHEPRequest is one request a fake WHEP endpoint received.
type fakeWHEPRequest struct {
	method, path, contentType, auth, body string
	at                                    time.Time
}

// fakeWHEP answers every POST with respond and records all requests.
type fakeWHEP struct {
	requests chan fakeWHEPRequest
	respond  func(w http.ResponseWriter, r *http.Request)
}

func newFakeWHEP(respond func(w http.ResponseWriter, r *http.Request)) *fakeWHEP {
	return &fakeWHEP{requests: make(chan fakeWHEPRequest, 64), respond: respond}
}

func (f *fakeWHEP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := fakeWHEPRequest{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
		auth: r.Header.Get("Authorization"), body: string(body), at: time.Now()}
	if r.Method == http.MethodPost {
		f.respond(w, r)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	select {
	case f.requests <- req:
	default:
	}
}

// next returns the next request of the given method, failing after timeout.
func (f *fakeWHEP) next(t *testing.T, method string, timeout time.Duration) fakeWHEPRequest {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case r := <-f.requests:
			if r.method == method {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s reached the WHEP endpoint within %v", method, timeout)
		}
	}
}

// startPlayerServer serves the player pages at / and whep at /whep/ on 127.0.0.1.
func startPlayerServer(t *testing.T, streams player.Lister, whep http.Handler) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/whep/", whep)
	mux.Handle("/", player.Handler(streams, logger))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func checkOffer(t *testing.T, r fakeWHEPRequest) {
	t.Helper()
	if r.path != "/whep/demo" || r.contentType != "application/sdp" {
		t.Errorf("POST %s with Content-Type %q, want /whep/demo application/sdp", r.path, r.contentType)
	}
	if !strings.HasPrefix(r.body, "v=0") || !strings.Contains(r.body, "m=video ") || !strings.Contains(r.body, "m=audio ") ||
		strings.Count(r.body, "a=recvonly") != 2 {
		t.Errorf("offer is not a recvonly video+audio SDP:\n%s", r.body)
	}
}

func TestBrowserPlayerRetriesOn409(t *testing.T) {
	checkLeaks(t)
	whep := newFakeWHEP(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "stream demo is not live", http.StatusConflict)
	})
	srv := startPlayerServer(t, nil, whep)
	ctx := startChromium(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/play/demo?token=s3cret")); err != nil {
		t.Fatal(err)
	}
	first := whep.next(t, http.MethodPost, 20*time.Second)
	checkOffer(t, first)
	if first.auth != "Bearer s3cret" {
		t.Errorf("Authorization %q, want Bearer s3cret", first.auth)
	}
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.state === 'retrying'`); err != nil {
		t.Fatal(err)
	}
	type playerState struct {
		State      string `json:"state"`
		Message    string `json:"message"`
		RetryInMs  int    `json:"retryInMs"`
		Attempts   int    `json:"attempts"`
		WhepURL    string `json:"whepURL"`
		OverlayMsg string `json:"overlay"`
	}
	st, err := evalJS[playerState](ctx, `({state: whepcast.state, message: whepcast.message, retryInMs: whepcast.retryInMs,
		attempts: whepcast.attempts, whepURL: whepcast.whepURL, overlay: document.getElementById('o-message').textContent})`)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "retrying" || !strings.Contains(st.Message, "WHEP 409: stream demo is not live") || st.RetryInMs != 1000 ||
		st.WhepURL != srv.URL+"/whep/demo" || st.OverlayMsg != st.Message {
		t.Errorf("player after 409: %+v", st)
	}
	// The next attempt honours Retry-After: 1.
	second := whep.next(t, http.MethodPost, 10*time.Second)
	checkOffer(t, second)
	if gap := second.at.Sub(first.at); gap < time.Second {
		t.Errorf("second POST %v after the first, want at least the 1 s of Retry-After", gap)
	}
}

func TestBrowserPlayerDeletesRelativeLocation(t *testing.T) {
	checkLeaks(t)
	var mu sync.Mutex
	posts := 0
	whep := newFakeWHEP(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		n := posts
		mu.Unlock()
		if n > 1 {
			w.Header().Set("Retry-After", "30")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		// A session whose answer the browser rejects: the player tears it
		// down, which DELETEs the Location, resolved against the WHEP URL.
		w.Header().Set("Location", "sessions/abc")
		w.Header().Set("Content-Type", "application/sdp")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "not an SDP answer")
	})
	srv := startPlayerServer(t, nil, whep)
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/play/demo?token=t1")); err != nil {
		t.Fatal(err)
	}
	whep.next(t, http.MethodPost, 20*time.Second)
	del := whep.next(t, http.MethodDelete, 10*time.Second)
	if del.path != "/whep/sessions/abc" || del.auth != "Bearer t1" {
		t.Errorf("DELETE %s with Authorization %q, want /whep/sessions/abc and Bearer t1", del.path, del.auth)
	}
	// Then it retries; the 503's Retry-After: 30 sets the wait.
	whep.next(t, http.MethodPost, 10*time.Second)
	if err := waitJS(ctx, 10*time.Second, `whepcast.state === 'retrying' && whepcast.retryInMs === 30000 && whepcast.message.indexOf('WHEP 503') === 0`); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserPlayerFailsOn401(t *testing.T) {
	checkLeaks(t)
	whep := newFakeWHEP(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token", http.StatusUnauthorized)
	})
	srv := startPlayerServer(t, nil, whep)
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/play/demo")); err != nil {
		t.Fatal(err)
	}
	if r := whep.next(t, http.MethodPost, 20*time.Second); r.auth != "" {
		t.Errorf("Authorization %q sent without ?token=", r.auth)
	}
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.state === 'failed' && whepcast.attempts === 1 && whepcast.message === 'WHEP 401: bad token'`); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserPlayerUsesWhepParameter(t *testing.T) {
	checkLeaks(t)
	other := newFakeWHEP(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "later", http.StatusConflict)
	})
	otherSrv := httptest.NewServer(corsAll(other))
	t.Cleanup(otherSrv.Close)
	local := newFakeWHEP(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "wrong server", http.StatusTeapot)
	})
	srv := startPlayerServer(t, nil, local)
	ctx := startChromium(t)
	target := otherSrv.URL + "/live/endpoint"
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/play/demo?whep="+target)); err != nil {
		t.Fatal(err)
	}
	r := other.next(t, http.MethodPost, 20*time.Second)
	if r.path != "/live/endpoint" {
		t.Errorf("POST %s, want /live/endpoint", r.path)
	}
	// The 409's Retry-After is readable across origins (exposed by CORS).
	if err := waitJS(ctx, 10*time.Second, `whepcast.state === 'retrying' && whepcast.retryInMs === 5000`); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-local.requests:
		t.Errorf("the same-origin WHEP endpoint got %s %s", r.method, r.path)
	default:
	}
}

// corsAll lets any origin call h, as a third-party WHEP server does.
func corsAll(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "Location, Retry-After, Link")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// browserCatalog is a player.Lister the test drives.
type browserCatalog struct {
	mu   sync.Mutex
	live map[string]bus.CatalogEntry
	subs []chan bus.CatalogEntry
}

func (c *browserCatalog) Live() []bus.CatalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bus.CatalogEntry
	for _, e := range c.live {
		out = append(out, e)
	}
	return out
}

func (c *browserCatalog) Subscribe() (<-chan bus.CatalogEntry, func()) {
	ch := make(chan bus.CatalogEntry, 16)
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, s := range c.subs {
			if s == ch {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
	}
}

func (c *browserCatalog) set(e bus.CatalogEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.State == bus.StateLive {
		c.live[e.Stream] = e
	} else {
		delete(c.live, e.Stream)
	}
	for _, s := range c.subs {
		s <- e
	}
}

func browserLiveEntry(name string, audio tsframes.Codec) bus.CatalogEntry {
	return bus.CatalogEntry{
		Stream: name, Epoch: 1, State: bus.StateLive, Started: time.Now().Add(-time.Minute), Updated: time.Now(),
		Tracks: bus.Announcement{Stream: name, Epoch: 1, Tracks: []tsframes.Track{
			{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true, ProfileLevelID: "42c01e"},
			{PID: 257, Kind: tsframes.KindAudio, Codec: audio, WebRTC: audio == tsframes.CodecOpus},
		}},
	}
}

func TestBrowserIndexUpdatesLive(t *testing.T) {
	checkLeaks(t)
	cat := &browserCatalog{live: map[string]bus.CatalogEntry{}}
	cat.set(browserLiveEntry("demo", tsframes.CodecOpus))
	srv := startPlayerServer(t, cat, http.NotFoundHandler())
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// The snapshot arrived (the script numbers the list).
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.count === '1' && document.querySelector('a[href="play/demo"]')`); err != nil {
		t.Fatal(err)
	}
	cat.set(browserLiveEntry("cam", tsframes.CodecAAC))
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.count === '2'`); err != nil {
		t.Fatal(err)
	}
	note, err := evalJS[string](ctx, `document.querySelector('li[data-stream="cam"] .note').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	if note != "AAC audio cannot be played over WebRTC" {
		t.Errorf("note %q", note)
	}
	// A name with markup is shown as text.
	evil := browserLiveEntry("x", tsframes.CodecOpus)
	evil.Stream = `<img src=x id=pwned>`
	cat.set(evil)
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.count === '3'`); err != nil {
		t.Fatal(err)
	}
	type nameView struct {
		Text   string `json:"text"`
		Pwned  bool   `json:"pwned"`
		IsLink bool   `json:"isLink"`
	}
	shown, err := evalJS[nameView](ctx, `(() => { const li = Array.from(document.querySelectorAll('li.stream')).find(l => l.dataset.stream.startsWith('<img'));
		const n = li.querySelector('.name'); return {text: n.textContent, pwned: !!document.getElementById('pwned'), isLink: n.tagName === 'A'}; })()`)
	if err != nil {
		t.Fatal(err)
	}
	if shown.Text != `<img src=x id=pwned>` || shown.Pwned || shown.IsLink {
		t.Errorf("markup name shown as %+v", shown)
	}
	// A stream that ends leaves the list.
	ended := browserLiveEntry("demo", tsframes.CodecOpus)
	ended.State = bus.StateEnded
	cat.set(ended)
	if err := waitJS(ctx, 10*time.Second, `document.body.dataset.count === '2' && !document.querySelector('a[href="play/demo"]')`); err != nil {
		t.Fatal(err)
	}
}
