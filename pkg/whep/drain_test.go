package whep

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestDrainTimeout keeps the sessions of a draining server until
// DrainTimeout, then closes them; Drained follows.
func TestDrainTimeout(t *testing.T) {
	ctx := t.Context()
	const timeout = 400 * time.Millisecond
	ts := newTestServer(t, func(c *Config) { c.DrainTimeout = timeout })
	fastEvents(ts)
	ts.catalog.set(liveEntry("cam", trackH264))
	first := ts.newSession(t, ctx, "cam")
	second := ts.newSession(t, ctx, "cam")
	es := ts.openEvents(t, ctx, ts.postEvents(t, ctx, second, `["reconnect"]`))

	began := time.Now()
	ts.srv.Drain()
	ts.srv.Drain() // idempotent: one timer, one reconnect
	es.want(t, ctx, `reconnect {"url":"/whep/cam"}`)
	if r, _ := ts.post(t, ctx, "cam", fixedOffer("video"), nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST while draining = %d", r.StatusCode)
	}
	// The sessions go on: PATCH, DELETE and the listing work.
	if r, _ := ts.do(t, ctx, http.MethodDelete, first, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE while draining = %d", r.StatusCode)
	}
	if isClosed(ts.srv.Drained()) {
		t.Fatal("drained with a session left")
	}
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions while draining, want 1", n)
	}
	select {
	case <-ts.srv.Drained():
	case <-time.After(testTimeout):
		t.Fatal("not drained after DrainTimeout")
	}
	if el := time.Since(began); el < timeout {
		t.Fatalf("drained after %v, before DrainTimeout %v", el, timeout)
	}
	es.wantEnd(t, ctx)
	ts.waitSessions(t, ctx, 0)
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total", "reason", reasonDrainTimeout); got != 1 {
		t.Fatalf("closed{drain_timeout} = %v", got)
	}
	if got := metricValue(t, ts.reg, "whepcast_whep_sessions_closed_total", "reason", reasonDelete); got != 1 {
		t.Fatalf("closed{delete} = %v", got)
	}
	if r, _ := ts.do(t, ctx, http.MethodDelete, second, nil, ""); r.StatusCode != 404 {
		t.Fatalf("DELETE after the drain timeout = %d", r.StatusCode)
	}
}

// TestDrainedWhenSessionsLeave ends the drain as soon as the last session
// is deleted, long before DrainTimeout; a server with no session is drained
// at once; DrainTimeout 0 keeps sessions until Close.
func TestDrainedWhenSessionsLeave(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.DrainTimeout = time.Hour })
	ts.catalog.set(liveEntry("cam", trackH264))
	location := ts.newSession(t, ctx, "cam")
	ts.srv.Drain()
	if isClosed(ts.srv.Drained()) {
		t.Fatal("drained with a session left")
	}
	if r, _ := ts.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	select {
	case <-ts.srv.Drained():
	case <-time.After(testTimeout):
		t.Fatal("not drained once the last session left")
	}

	empty := newTestServer(t, func(c *Config) { c.NodeID = "node-e"; c.DrainTimeout = time.Hour })
	if isClosed(empty.srv.Drained()) {
		t.Fatal("drained before Drain")
	}
	empty.srv.Drain()
	if !isClosed(empty.srv.Drained()) {
		t.Fatal("a server without sessions is not drained at once")
	}

	keep := newTestServer(t, func(c *Config) { c.NodeID = "node-k" })
	keep.catalog.set(liveEntry("cam", trackH264))
	keep.newSession(t, ctx, "cam")
	keep.srv.Drain()
	if err := keep.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(keep.srv.Sessions()); n != 0 || !isClosed(keep.srv.Drained()) {
		t.Fatalf("after Close: %d sessions, drained %v", n, isClosed(keep.srv.Drained()))
	}
}

// TestDrainConfig refuses a negative DrainTimeout.
func TestDrainConfig(t *testing.T) {
	cfg := Config{}
	cfg.ICEUDPAddr = "127.0.0.1:0"
	cfg.DrainTimeout = -time.Second
	if _, err := New(cfg, Deps{Catalog: newFakeCatalog(), Media: &fakeMedia{}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a negative DrainTimeout = %v, want ErrInvalidConfig", err)
	}
}
