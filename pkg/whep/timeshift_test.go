package whep

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "live", want: time.Time{}},
		{in: "-30s", want: now.Add(-30 * time.Second)},
		{in: "-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "2026-12-04T17:00:00Z", want: now.Add(-time.Hour)},
		{in: "2026-12-04T18:59:00+01:00", want: now.Add(-time.Minute)},
		{in: "30s", bad: true},
		{in: "-3x", bad: true},
		{in: "yesterday", bad: true},
		{in: "2026-12-04T18:00:01Z", bad: true}, // the future
	} {
		got, err := parseStart(c.in, now)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "bad request") {
				t.Errorf("parseStart(%q) = %v, %v; want a bad request", c.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseStart(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// timeShiftServer is a test server with a real relay on an embedded NATS
// server, and a publisher that stored av.ts (6 s of H.264 and Opus, a
// keyframe a second) at twice real time as stream "dvr", now ended. It
// returns when the stream was stored and the stream's first store time.
func timeShiftServer(t *testing.T) (*testServer, time.Time) {
	t.Helper()
	nc := natstest.EmbeddedConn(t)
	r, err := relay.New(relay.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ts := newTestServer(t, nil, func(d *Deps) {
		d.Conn = nc
		d.Media = FromRelay(r)
	})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	pub, err := bus.NewPublisher(ctx, nc, "dvr", bus.PublisherConfig{Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := tstest.Demux(t, tstest.Read(t, "av.ts"))
	began := time.Now()
	var first int64 = -1
	for _, e := range d.Events {
		if e.Announcement != nil {
			if err := pub.Announce(ctx, *e.Announcement); err != nil {
				t.Fatal(err)
			}
			continue
		}
		f := *e.Frame
		if first < 0 {
			first = f.PTS
		}
		// Paced at twice real time by PTS.
		if wait := time.Until(began.Add(time.Duration(f.PTS-first) * time.Second / 90000 / 2)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		if err := pub.Publish(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return ts, began
}

// TestTimeShiftSession: a WHEP client with ?start= plays an ended stream
// from its log: position events that are not live, then inactive and the
// end of the session at the end of the log. Seek answers 204 and moves
// the position; bad starts are 400, starts outside the retention 416 with
// the window, unknown streams and sessions 404.
func TestTimeShiftSession(t *testing.T) {
	ts, began := timeShiftServer(t)
	fastEvents(ts)
	ctx := t.Context()

	// Refusals of POST.
	c0 := newTestClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	offer := c0.offer(t)
	for _, c := range []struct {
		stream, start string
		status        int
		body          string
	}{
		{"dvr", "yesterday", http.StatusBadRequest, "bad request"},
		{"dvr", "2099-01-01T00:00:00Z", http.StatusBadRequest, "in the future"},
		{"dvr", time.Now().UTC().Format(time.RFC3339Nano), http.StatusRequestedRangeNotSatisfiable, `stream "dvr" holds ` + began.UTC().Format("2006-01-02T15")},
		{"nosuch", "-5s", http.StatusNotFound, "not stored"},
	} {
		resp, body := ts.post(t, ctx, c.stream+"?start="+c.start, offer, nil)
		if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
			t.Fatalf("POST %s?start=%s = %d %q, want %d %q", c.stream, c.start, resp.StatusCode, body, c.status, c.body)
		}
	}

	// 1.2 s into the 3 s the stream was stored over.
	c := newTestClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	start := began.Add(1200 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	resp, body := ts.post(t, ctx, "dvr?start="+start, c.offer(t), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST ?start=%s = %d %q", start, resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	c.setAnswer(t, body)
	es := ts.openEvents(t, ctx, loc+"/events")
	es.want(t, ctx, `active {}`, `viewercount {"viewercount":1}`)
	c.waitConnected(t, ctx)
	c.waitPackets(t, ctx, 50)

	// Seek: bad bodies, out of range, an unknown session, then back to the
	// stream's start.
	hj := hdr("Content-Type", "application/json")
	for _, x := range []struct {
		path, body string
		status     int
	}{
		{loc + "/seek", `{"start":"soon"}`, http.StatusBadRequest},
		{loc + "/seek", `{}`, http.StatusBadRequest},
		{loc + "/seek", `not json`, http.StatusBadRequest},
		{loc + "/seek", `{"start":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`, http.StatusRequestedRangeNotSatisfiable},
		{"/whep/dvr/node-a.aaaaaaaaaaaaaaaaaaaaaaaaaa/seek", `{"start":"-1s"}`, http.StatusNotFound},
	} {
		resp, body := ts.do(t, ctx, http.MethodPost, x.path, hj, x.body)
		if resp.StatusCode != x.status {
			t.Fatalf("POST %s %s = %d %q, want %d", x.path, x.body, resp.StatusCode, body, x.status)
		}
	}
	resp, body = ts.do(t, ctx, http.MethodPost, loc+"/seek", hj, `{"start":"`+began.UTC().Format(time.RFC3339Nano)+`"}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seek to the start = %d %q", resp.StatusCode, body)
	}

	// Position events: not live, from the stream's start after the seek,
	// then the end of the log: inactive, and the event stream ends.
	var sawStart bool
	for {
		it, ok := es.next(t, ctx)
		if !ok {
			t.Fatal("event stream ended before inactive")
		}
		if it.event == eventInactive {
			break
		}
		if it.event != eventPosition {
			continue
		}
		var p struct {
			PTSTime  float64 `json:"pts_time"`
			WallTime string  `json:"wall_time"`
			Live     bool    `json:"live"`
			LagMS    int64   `json:"lag_ms"`
		}
		if err := json.Unmarshal([]byte(it.data), &p); err != nil {
			t.Fatalf("position %q: %v", it.data, err)
		}
		wall, err := time.Parse(time.RFC3339Nano, p.WallTime)
		if err != nil || p.Live || p.LagMS <= 0 || p.PTSTime <= 0 {
			t.Fatalf("position %q", it.data)
		}
		if wall.Sub(began) < 500*time.Millisecond {
			sawStart = true
		}
	}
	if !sawStart {
		t.Fatal("no position from the stream's start after the seek")
	}
	es.wantEnd(t, ctx)
	waitFor(t, ctx, "the session closed", func() bool { return len(ts.srv.sessions.list()) == 0 })
}

// TestSeekForwarded: a seek that reaches another node is answered by the
// node owning the session, which checks the token with its own.
func TestSeekForwarded(t *testing.T) {
	ctx := t.Context()
	ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	a := newTestServer(t, func(c *Config) { c.NodeID = "node-a"; c.Tokens = []string{"secret-a"} },
		func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	b := newTestServer(t, func(c *Config) { c.NodeID = "node-b" }, func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
	a.catalog.set(liveEntry("cam", trackH264))
	resp, body := a.post(t, ctx, "cam", fixedOffer("video"), hdr("Authorization", "Bearer secret-a"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	for _, c := range []struct {
		h      http.Header
		body   string
		status int
	}{
		{hdr("Content-Type", "application/json"), `{"start":"-1s"}`, http.StatusUnauthorized},
		{hdr("Content-Type", "application/json", "Authorization", "Bearer secret-a"), `{"start":"never"}`, http.StatusBadRequest},
		// The fake media of node A cannot seek: its own answer.
		{hdr("Content-Type", "application/json", "Authorization", "Bearer secret-a"), `{"start":"-1s"}`, http.StatusUnprocessableEntity},
		{hdr("Content-Type", "text/plain", "Authorization", "Bearer secret-a"), `{"start":"live"}`, http.StatusUnsupportedMediaType},
	} {
		resp, body := b.do(t, ctx, http.MethodPost, loc+"/seek", c.h, c.body)
		if resp.StatusCode != c.status {
			t.Fatalf("seek %s through B = %d %q, want %d", c.body, resp.StatusCode, body, c.status)
		}
	}
	if resp, _ := b.do(t, ctx, http.MethodGet, loc+"/seek", nil, ""); resp.StatusCode != http.StatusMethodNotAllowed ||
		resp.Header.Get("Allow") != allowSeek {
		t.Fatalf("GET of seek = %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestTimeShiftCountsAgainstLimits: a time-shifted POST beyond
// MaxSessions is 503 with Retry-After, like a live one.
func TestTimeShiftCountsAgainstLimits(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxSessions = 1 })
	ctx := t.Context()
	ts.catalog.set(liveEntry("cam", trackH264))
	ts.newSession(t, ctx, "cam")
	resp, body := ts.post(t, ctx, "cam?start=-10s", fixedOffer("video"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("time-shifted POST beyond the limit = %d %q (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}
