package whep

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

// iceServerLinks returns the rel="ice-server" values of Link headers.
func iceServerLinks(links []string) []string {
	out := []string{}
	for _, l := range links {
		if strings.Contains(l, `rel="ice-server"`) {
			out = append(out, l)
		}
	}
	return out
}

var (
	reEventsLink = regexp.MustCompile(`^</whep/cam/node-a\.[a-z2-7]{26}/events>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="active,inactive,reconnect,viewercount,position,scte35"$`)
	reEventsLoc  = regexp.MustCompile(`^/whep/cam/node-a\.[a-z2-7]{26}/events/[a-z2-7]{26}$`)
)

// fastEvents shortens the event timing of ts (before any event stream).
func fastEvents(ts *testServer) {
	ts.srv.events.tick = 10 * time.Millisecond
	ts.srv.events.inactiveAfter = 200 * time.Millisecond
	ts.srv.events.keepAlive = 100 * time.Millisecond
}

// sseItem is an event, or a comment line, of an event stream.
type sseItem struct{ event, data, comment string }

// sseClient reads an event stream.
type sseClient struct {
	resp  *http.Response
	items chan sseItem // closed at the end of the stream
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// openEvents GETs an event stream, which must answer 200 text/event-stream.
func (ts *testServer) openEvents(t *testing.T, ctx context.Context, path string) *sseClient {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		resp.Body.Close()
		t.Fatalf("GET %s = %d %v", path, resp.StatusCode, resp.Header)
	}
	c := &sseClient{resp: resp, items: make(chan sseItem, 64), done: make(chan struct{})}
	c.wg.Add(1)
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer c.wg.Done()
	defer close(c.items)
	sc := bufio.NewScanner(c.resp.Body)
	var it sseItem
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if it == (sseItem{}) {
				continue
			}
			select {
			case c.items <- it:
			case <-c.done:
				return
			}
			it = sseItem{}
		case strings.HasPrefix(line, ":"):
			it.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			it.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if it.data != "" {
				it.comment = "second data line"
			}
			it.data = strings.TrimPrefix(line, "data: ")
		default:
			it.comment = "unexpected line " + line
		}
	}
}

func (c *sseClient) close() {
	c.once.Do(func() {
		close(c.done)
		c.resp.Body.Close()
		c.wg.Wait()
	})
}

// next returns the next event, skipping keep-alive comments; false at the
// end of the stream.
func (c *sseClient) next(t *testing.T, ctx context.Context) (sseItem, bool) {
	t.Helper()
	for {
		select {
		case it, ok := <-c.items:
			if !ok {
				return sseItem{}, false
			}
			if it.event == "" {
				if it.comment != "keep-alive" {
					t.Fatalf("unexpected comment %q", it.comment)
				}
				continue
			}
			if it.comment != "" {
				t.Fatalf("event %+v", it)
			}
			return it, true
		case <-time.After(testTimeout):
			t.Fatal("no event in time")
		}
	}
}

// want reads the next events and checks them, "name data" each.
func (c *sseClient) want(t *testing.T, ctx context.Context, events ...string) {
	t.Helper()
	for _, w := range events {
		it, ok := c.next(t, ctx)
		if !ok {
			t.Fatalf("stream ended, want %q", w)
		}
		if got := it.event + " " + it.data; got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

// wantEnd waits for the end of the stream with no further event.
func (c *sseClient) wantEnd(t *testing.T, ctx context.Context) {
	t.Helper()
	if it, ok := c.next(t, ctx); ok {
		t.Fatalf("event %+v, want the end of the stream", it)
	}
}

// postEvents creates an event stream with body (JSON, or none when empty)
// and returns its Location.
func (ts *testServer) postEvents(t *testing.T, ctx context.Context, location, body string) string {
	t.Helper()
	var h http.Header
	if body != "" {
		h = hdr("Content-Type", "application/json")
	}
	resp, rbody := ts.do(t, ctx, http.MethodPost, location+"/events", h, body)
	if resp.StatusCode != http.StatusCreated || rbody != "" {
		t.Fatalf("POST events = %d %q", resp.StatusCode, rbody)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, location+"/events/") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST events: Location %q, Cache-Control %q", loc, resp.Header.Get("Cache-Control"))
	}
	return loc
}

// newSession POSTs a fixed offer for stream, which never connects, and
// returns the session's Location.
func (ts *testServer) newSession(t *testing.T, ctx context.Context, stream string) string {
	t.Helper()
	resp, body := ts.post(t, ctx, stream, fixedOffer("video"), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// TestEventsLink checks that the extension is announced on the 201 only,
// with the session's entry point.
func TestEventsLink(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.MaxWaiting = 0 })
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	ts.catalog.set(liveEntry("aac", trackAAC))
	resp, _ := ts.post(t, ctx, "cam", fixedOffer("video", "audio"), nil)
	links := resp.Header.Values("Link")
	if resp.StatusCode != 201 || len(links) != 1 || !reEventsLink.MatchString(links[0]) ||
		links[0] != "<"+resp.Header.Get("Location")+`/events>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="active,inactive,reconnect,viewercount,position,scte35"` {
		t.Fatalf("201: Link %q (Location %q)", links, resp.Header.Get("Location"))
	}
	for _, c := range []struct {
		method, path, body string
		h                  http.Header
		status             int
	}{
		{"POST", "/whep/off", fixedOffer("video"), hdr("Content-Type", "application/sdp"), 409},
		{"POST", "/whep/aac", fixedOffer("audio"), hdr("Content-Type", "application/sdp"), 422},
		{"POST", "/whep/cam", "x", hdr("Content-Type", "application/sdp"), 400},
		{"OPTIONS", "/whep/cam", "", nil, 204},
		{"OPTIONS", resp.Header.Get("Location"), "", nil, 204},
		{"OPTIONS", resp.Header.Get("Location") + "/events", "", nil, 204},
	} {
		r, body := ts.do(t, ctx, c.method, c.path, c.h, c.body)
		if r.StatusCode != c.status || len(r.Header.Values("Link")) != 0 {
			t.Errorf("%s %s = %d %q, Link %q", c.method, c.path, r.StatusCode, body, r.Header.Values("Link"))
		}
	}
	ts.srv.beginShutdown()
	r, _ := ts.post(t, ctx, "cam", fixedOffer("video"), nil)
	if r.StatusCode != 503 || len(r.Header.Values("Link")) != 0 {
		t.Errorf("draining POST = %d, Link %q", r.StatusCode, r.Header.Values("Link"))
	}
}

// TestEventStream creates an event stream of a subset of the events and
// follows it: the initial viewer count, its change, keep-alives, reconnect
// on Shutdown, the end on DELETE of the session, and 404 afterwards.
func TestEventStream(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	ts.catalog.set(liveEntry("other", trackH264))
	location := ts.newSession(t, ctx, "cam")
	ts.newSession(t, ctx, "other") // another stream: not counted

	// "layers" is not sent by this server: ignored.
	esLoc := ts.postEvents(t, ctx, location, `["viewercount","reconnect","layers"]`)
	if !reEventsLoc.MatchString(esLoc) {
		t.Fatalf("Location %q", esLoc)
	}
	es := ts.openEvents(t, ctx, esLoc)
	es.want(t, ctx, `viewercount {"viewercount":1}`) // no active: not asked for

	// Keep-alive comments while nothing happens.
	for seen := 0; seen < 2; {
		select {
		case it := <-es.items:
			if it.comment != "keep-alive" || it.event != "" {
				t.Fatalf("got %+v, want a keep-alive", it)
			}
			seen++
		case <-time.After(testTimeout):
			t.Fatal("no keep-alive")
		}
	}

	second := ts.newSession(t, ctx, "cam")
	es.want(t, ctx, `viewercount {"viewercount":2}`)
	if r, _ := ts.do(t, ctx, http.MethodDelete, second, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	es.want(t, ctx, `viewercount {"viewercount":1}`)

	ts.srv.beginShutdown()
	es.want(t, ctx, `reconnect {"url":"/whep/cam"}`)
	// An event stream opened while draining starts with reconnect.
	es2 := ts.openEvents(t, ctx, ts.postEvents(t, ctx, location, ""))
	es2.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`, `reconnect {"url":"/whep/cam"}`)

	if r, _ := ts.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	es.wantEnd(t, ctx)
	es2.wantEnd(t, ctx)
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if r, body := ts.do(t, ctx, m, esLoc, nil, ""); r.StatusCode != 404 {
			t.Fatalf("%s after the session's DELETE = %d %q", m, r.StatusCode, body)
		}
	}
	if r, _ := ts.do(t, ctx, http.MethodPost, location+"/events", nil, ""); r.StatusCode != 404 {
		t.Fatalf("POST events after DELETE = %d", r.StatusCode)
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_requests_total", "method", "GET", "code", "200"); got != 2 {
		t.Fatalf("requests_total{GET,200} = %v", got)
	}
}

// TestEventStreamDelete ends an event stream by DELETE: its reader ends,
// later requests are 404, and the session goes on.
func TestEventStreamDelete(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	location := ts.newSession(t, ctx, "cam")
	esLoc := ts.postEvents(t, ctx, location, `[]`) // [] is every event
	es := ts.openEvents(t, ctx, esLoc)
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
	if r, body := ts.do(t, ctx, http.MethodDelete, esLoc, nil, ""); r.StatusCode != 200 || body != "" {
		t.Fatalf("DELETE event stream = %d %q", r.StatusCode, body)
	}
	es.wantEnd(t, ctx)
	if r, _ := ts.do(t, ctx, http.MethodGet, esLoc, nil, ""); r.StatusCode != 404 {
		t.Fatalf("GET after DELETE = %d", r.StatusCode)
	}
	if r, _ := ts.do(t, ctx, http.MethodDelete, esLoc, nil, ""); r.StatusCode != 404 {
		t.Fatalf("DELETE again = %d", r.StatusCode)
	}
	if ts.srv.sessions.get("cam", strings.TrimPrefix(location, "/whep/cam/")) == nil {
		t.Fatal("the session went with its event stream")
	}
}

// TestEventStreamLimits checks the bounds: a fifth event stream ends the
// oldest, and a second reader of a stream ends the first.
func TestEventStreamLimits(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	location := ts.newSession(t, ctx, "cam")
	first := ts.postEvents(t, ctx, location, `["viewercount"]`)
	r1 := ts.openEvents(t, ctx, first)
	r1.want(t, ctx, `viewercount {"viewercount":1}`)
	r2 := ts.openEvents(t, ctx, first) // takes over: r1 ends
	r1.wantEnd(t, ctx)
	for range maxEventStreams - 1 {
		ts.postEvents(t, ctx, location, "")
	}
	ts.postEvents(t, ctx, location, "") // the fifth: the first one goes
	r2.wantEnd(t, ctx)
	if r, _ := ts.do(t, ctx, http.MethodGet, first, nil, ""); r.StatusCode != 404 {
		t.Fatalf("GET of the evicted stream = %d", r.StatusCode)
	}
	ts.srv.events.mu.Lock()
	n := len(ts.srv.events.bySession[strings.TrimPrefix(location, "/whep/cam/")].streams)
	ts.srv.events.mu.Unlock()
	if n != maxEventStreams {
		t.Fatalf("%d event streams, want %d", n, maxEventStreams)
	}
}

// TestEventsEntryGet reads every event from a GET of the entry point (for
// EventSource-only players): its stream exists for that request only.
func TestEventsEntryGet(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	location := ts.newSession(t, ctx, "cam")
	id := strings.TrimPrefix(location, "/whep/cam/")
	es := ts.openEvents(t, ctx, location+"/events")
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
	es.close()
	waitFor(t, ctx, "the request's event stream removed", func() bool {
		ts.srv.events.mu.Lock()
		defer ts.srv.events.mu.Unlock()
		return ts.srv.events.bySession[id] == nil
	})
	es = ts.openEvents(t, ctx, location+"/events")
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
	ts.catalog.set(bus.CatalogEntry{Stream: "cam", Epoch: 42, State: bus.StateEnded})
	es.want(t, ctx, `inactive {}`)
	ts.catalog.set(liveEntry("cam", trackH264))
	es.want(t, ctx, `active {}`)
	if r, _ := ts.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	es.wantEnd(t, ctx)
}

// TestEventsPlaying follows a connected session: active, then inactive when
// its frames stop (the viewer ended with the stream), then the end.
func TestEventsPlaying(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	c.waitPackets(t, ctx, 3)
	es := ts.openEvents(t, ctx, ts.postEvents(t, ctx, resp.Header.Get("Location"), ""))
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
	ts.media.all()[0].end(relay.ErrStreamEnded)
	es.want(t, ctx, `inactive {}`)
	es.wantEnd(t, ctx)
}

// TestEventsFrames drives the sampler by hand: a connected session whose
// frames stop is inactive after inactiveAfter, active again when they
// resume; the catalog's end of the stream makes it inactive too.
func TestEventsFrames(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	h := ts.srv.events
	h.tick = time.Hour // update is called by the test
	ts.catalog.set(liveEntry("cam", trackH264))
	v := &fakeViewer{stream: "cam", done: make(chan struct{}), quit: make(chan struct{})}
	ss := &session{id: newSessionID("node-a"), stream: "cam", viewer: v, done: make(chan struct{}), logger: ts.srv.logger}
	ss.started.Store(true)
	ts.srv.sessions.mu.Lock()
	ts.srv.sessions.sessions[ss.id] = ss // listed, not closed by Close: removed below
	ts.srv.sessions.mu.Unlock()
	id, err := h.create(ss, maskAll)
	if err != nil {
		t.Fatal(err)
	}
	es := h.find(ss.id, id)
	reader := h.attach(es)
	check := func(want ...string) {
		t.Helper()
		evs, end := h.take(es, reader)
		var got []string
		for _, e := range evs {
			got = append(got, e.Name+" "+e.Data)
		}
		if end || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("events %q (end %v), want %q", got, end, want)
		}
	}
	check(`active {}`, `viewercount {"viewercount":1}`)
	t0 := time.Now()
	add := func(n uint64) {
		v.mu.Lock()
		v.packets += n
		v.mu.Unlock()
	}
	add(1)
	h.update(t0.Add(time.Second))
	check()
	h.update(t0.Add(time.Second + h.inactiveAfter - time.Millisecond))
	check()
	h.update(t0.Add(time.Second + h.inactiveAfter))
	check(`inactive {}`)
	add(1)
	h.update(t0.Add(2*time.Second + h.inactiveAfter))
	check(`active {}`)
	ts.catalog.set(bus.CatalogEntry{Stream: "cam", Epoch: 42, State: bus.StateEnded})
	add(1)
	h.update(t0.Add(3*time.Second + h.inactiveAfter))
	check(`inactive {}`)
	// Pending events of a class are replaced by the latest one.
	ts.catalog.set(liveEntry("cam", trackH264))
	add(1)
	h.update(t0.Add(4*time.Second + h.inactiveAfter))
	h.update(t0.Add(5*time.Second + 2*h.inactiveAfter))
	check(`inactive {}`)
	ts.srv.sessions.remove(ss.id)
	h.update(t0.Add(6*time.Second + 2*h.inactiveAfter)) // closing: nothing more
	h.sessionClosed(ss, reasonDelete)
	if evs, end := h.take(es, reader); !end || len(evs) != 0 {
		t.Fatalf("after close: %v %v", evs, end)
	}
	_ = ctx
}

// TestEventsErrors checks the status codes of the extension's resources.
func TestEventsErrors(t *testing.T) {
	ctx := t.Context()
	open := newTestServer(t, nil)
	auth := newTestServer(t, func(c *Config) { c.Tokens = []string{"s3cret"}; c.NodeID = "node-b" })
	for _, ts := range []*testServer{open, auth} {
		ts.catalog.set(liveEntry("cam", trackH264))
	}
	loc := open.newSession(t, ctx, "cam")
	esLoc := open.postEvents(t, ctx, loc, "")
	resp, body := auth.post(t, ctx, "cam", fixedOffer("video"), hdr("Authorization", "Bearer s3cret"))
	if resp.StatusCode != 201 {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	authLoc := resp.Header.Get("Location")
	bearer := hdr("Authorization", "Bearer s3cret")
	r, _ := auth.do(t, ctx, http.MethodPost, authLoc+"/events", bearer, "")
	if r.StatusCode != 201 {
		t.Fatalf("POST events with token = %d", r.StatusCode)
	}
	authES := r.Header.Get("Location")
	unknown := "/whep/cam/node-a.aaaaaaaaaaaaaaaaaaaaaaaaaa"
	jsonCT := hdr("Content-Type", "application/json")
	for _, c := range []struct {
		name         string
		ts           *testServer
		method, path string
		h            http.Header
		body         string
		status       int
		want         map[string]string
	}{
		{"unknown session", open, "POST", unknown + "/events", nil, "", 404, nil},
		{"unknown session GET", open, "GET", unknown + "/events", nil, "", 404, nil},
		{"unknown event stream", open, "GET", loc + "/events/aaaaaaaaaaaaaaaaaaaaaaaaaa", nil, "", 404, nil},
		{"unknown event stream DELETE", open, "DELETE", loc + "/events/aaaaaaaaaaaaaaaaaaaaaaaaaa", nil, "", 404, nil},
		{"malformed event stream id", open, "GET", loc + "/events/xyz", nil, "", 404, nil},
		{"malformed session id", open, "POST", "/whep/cam/nonsense/events", nil, "", 404, nil},
		{"bad stream name", open, "POST", "/whep/c.m/" + strings.TrimPrefix(loc, "/whep/cam/") + "/events", nil, "", 404, nil},
		{"wrong stream", open, "GET", strings.Replace(esLoc, "/cam/", "/other/", 1), nil, "", 404, nil},
		{"other node without bus", open, "POST", "/whep/cam/node-z.aaaaaaaaaaaaaaaaaaaaaaaaaa/events", nil, "", 404, nil},
		{"trailing slash", open, "GET", loc + "/events/", nil, "", 404, nil},
		{"too deep", open, "GET", esLoc + "/x", nil, "", 404, nil},
		{"bad JSON", open, "POST", loc + "/events", jsonCT, `{"active":1}`, 400, nil},
		{"not JSON", open, "POST", loc + "/events", hdr("Content-Type", "text/plain"), `["active"]`, 415, nil},
		{"body too large", open, "POST", loc + "/events", jsonCT, `["` + strings.Repeat("a", maxEventsBody) + `"]`, 413, nil},
		{"PATCH entry", open, "PATCH", loc + "/events", nil, "", 405, map[string]string{"Allow": "OPTIONS, GET, POST"}},
		{"DELETE entry", open, "DELETE", loc + "/events", nil, "", 405, map[string]string{"Allow": "OPTIONS, GET, POST"}},
		{"POST stream", open, "POST", esLoc, nil, "", 405, map[string]string{"Allow": "OPTIONS, GET, DELETE"}},
		{"OPTIONS entry", open, "OPTIONS", loc + "/events", nil, "", 204, map[string]string{"Allow": "OPTIONS, GET, POST"}},
		{"OPTIONS stream", open, "OPTIONS", esLoc, nil, "", 204, map[string]string{"Allow": "OPTIONS, GET, DELETE"}},
		{"preflight entry", open, "OPTIONS", loc + "/events",
			hdr("Origin", "https://p.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"), "", 204,
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match"}},
		{"cross-origin POST", open, "POST", loc + "/events", hdr("Origin", "https://p.example"), "", 201,
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": exposeHeaders}},
		{"auth POST without token", auth, "POST", authLoc + "/events", nil, "", 401, map[string]string{"WWW-Authenticate": `Bearer realm="whepcast"`}},
		{"auth GET entry without token", auth, "GET", authLoc + "/events", nil, "", 401, nil},
		{"auth DELETE without token", auth, "DELETE", authES, nil, "", 401, nil},
		{"auth POST token in URL", auth, "POST", authLoc + "/events?token=s3cret", nil, "", 201, nil},
		{"auth DELETE with token", auth, "DELETE", authES, bearer, "", 200, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, body := c.ts.do(t, ctx, c.method, c.path, c.h, c.body)
			if r.StatusCode != c.status {
				t.Fatalf("%s %s = %d %q, want %d", c.method, c.path, r.StatusCode, body, c.status)
			}
			for k, v := range c.want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if c.status >= 400 && c.status != 405 && body == "" {
				t.Error("error without a message")
			}
		})
	}
	// The event stream's URL is its credential: its GET needs no token.
	r, _ = auth.do(t, ctx, http.MethodPost, authLoc+"/events", bearer, "")
	es := auth.openEvents(t, ctx, r.Header.Get("Location"))
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
}

// TestEventsForwarded serves the event stream of node A's session through
// node B: create, read, reconnect on A's Shutdown, and the end when the session
// is deleted through B.
func TestEventsForwarded(t *testing.T) {
	ctx := t.Context()
	ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	a := newTestServer(t, func(c *Config) { c.NodeID = "node-a" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	b := newTestServer(t, func(c *Config) { c.NodeID = "node-b" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	fastEvents(a)
	fastEvents(b)
	a.catalog.set(liveEntry("cam", trackH264))
	location := a.newSession(t, ctx, "cam")

	esLoc := b.postEvents(t, ctx, location, `["viewercount","reconnect"]`)
	if !reEventsLoc.MatchString(esLoc) {
		t.Fatalf("Location %q", esLoc)
	}
	es := b.openEvents(t, ctx, esLoc)
	es.want(t, ctx, `viewercount {"viewercount":1}`)
	// Polls over NATS end with keep-alives while nothing happens.
	for seen := 0; seen < 2; {
		select {
		case it := <-es.items:
			if it.comment != "keep-alive" {
				t.Fatalf("got %+v, want a keep-alive", it)
			}
			seen++
		case <-time.After(testTimeout):
			t.Fatal("no keep-alive")
		}
	}
	a.newSession(t, ctx, "cam")
	es.want(t, ctx, `viewercount {"viewercount":2}`)
	a.srv.beginShutdown()
	es.want(t, ctx, `reconnect {"url":"/whep/cam"}`)

	// Errors come back from the owner.
	if r, _ := b.do(t, ctx, http.MethodGet, location+"/events/aaaaaaaaaaaaaaaaaaaaaaaaaa", nil, ""); r.StatusCode != 404 {
		t.Fatalf("GET of an unknown stream through B = %d", r.StatusCode)
	}
	if r, _ := b.do(t, ctx, http.MethodPost, location+"/events", hdr("Content-Type", "application/json"), "{"); r.StatusCode != 400 {
		t.Fatalf("bad POST through B = %d", r.StatusCode)
	}
	if r, _ := b.do(t, ctx, http.MethodPost, "/whep/cam/node-z.aaaaaaaaaaaaaaaaaaaaaaaaaa/events", nil, ""); r.StatusCode != 404 {
		t.Fatalf("POST for a node that is gone = %d", r.StatusCode)
	}
	// The entry point's GET through B, and its removal afterwards.
	entry := b.openEvents(t, ctx, location+"/events")
	entry.want(t, ctx, `active {}`, `viewercount {"viewercount":2}`, `reconnect {"url":"/whep/cam"}`)
	entry.close()
	other := b.postEvents(t, ctx, location, "")
	if r, _ := b.do(t, ctx, http.MethodDelete, other, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE of an event stream through B = %d", r.StatusCode)
	}
	waitFor(t, ctx, "only the first event stream left", func() bool {
		a.srv.events.mu.Lock()
		defer a.srv.events.mu.Unlock()
		se := a.srv.events.bySession[strings.TrimPrefix(location, "/whep/cam/")]
		return se != nil && len(se.streams) == 1
	})

	if r, _ := b.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE through B = %d", r.StatusCode)
	}
	es.wantEnd(t, ctx)
	if r, _ := b.do(t, ctx, http.MethodGet, esLoc, nil, ""); r.StatusCode != 404 {
		t.Fatalf("GET after DELETE = %d", r.StatusCode)
	}
}

// TestEventsOwnerGone ends B's relayed stream when A closes.
func TestEventsOwnerGone(t *testing.T) {
	ctx := t.Context()
	ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	a := newTestServer(t, func(c *Config) { c.NodeID = "node-a" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	b := newTestServer(t, func(c *Config) { c.NodeID = "node-b" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	fastEvents(b)
	a.catalog.set(liveEntry("cam", trackH264))
	location := a.newSession(t, ctx, "cam")
	es := b.openEvents(t, ctx, b.postEvents(t, ctx, location, `["viewercount"]`))
	es.want(t, ctx, `viewercount {"viewercount":1}`)
	if err := a.srv.Close(); err != nil {
		t.Fatal(err)
	}
	es.wantEnd(t, ctx)
	// And B's own Close ends the streams it relays.
	c := newTestServer(t, func(c *Config) { c.NodeID = "node-c" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	c.catalog.set(liveEntry("cam", trackH264))
	loc := c.newSession(t, ctx, "cam")
	es = b.openEvents(t, ctx, b.postEvents(t, ctx, loc, `["viewercount"]`))
	es.want(t, ctx, `viewercount {"viewercount":1}`)
	if err := b.srv.Close(); err != nil {
		t.Fatal(err)
	}
	es.wantEnd(t, ctx)
}
