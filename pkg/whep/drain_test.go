package whep

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// shutdownIn runs Shutdown(ctx) of ts in a goroutine; its result comes on
// the channel.
func shutdownIn(ctx context.Context, ts *testServer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	return done
}

// returned reports whether Shutdown has returned on done, and its error.
func returned(done <-chan error) (bool, error) {
	select {
	case err := <-done:
		return true, err
	default:
		return false, nil
	}
}

// waitReturned waits for Shutdown's result on done.
func waitReturned(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("Shutdown did not return: %s", what)
		return nil
	}
}

// TestDrainTimeout keeps the sessions of a server that shuts down until
// DrainTimeout, then closes them; Shutdown returns then.
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
	shut := shutdownIn(ctx, ts)
	again := shutdownIn(ctx, ts) // twice: one timer, one reconnect
	es.want(t, ctx, `reconnect {"url":"/whep/cam"}`)
	if r, _ := ts.post(t, ctx, "cam", fixedOffer("video"), nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST while draining = %d", r.StatusCode)
	}
	// The sessions go on: PATCH, DELETE and the listing work.
	if r, _ := ts.do(t, ctx, http.MethodDelete, first, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE while draining = %d", r.StatusCode)
	}
	if done, err := returned(shut); done {
		t.Fatalf("Shutdown returned (%v) with a session left", err)
	}
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions while draining, want 1", n)
	}
	for _, ch := range []<-chan error{shut, again} {
		if err := waitReturned(t, ch, "not drained after DrainTimeout"); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
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

// TestDrainedWhenSessionsLeave ends Shutdown as soon as the last session
// is deleted, long before DrainTimeout; a server with no session shuts down
// at once; DrainTimeout 0 keeps sessions until Close, which ends Shutdown;
// Shutdown returns its context's error when it ends first.
func TestDrainedWhenSessionsLeave(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.DrainTimeout = time.Hour })
	ts.catalog.set(liveEntry("cam", trackH264))
	location := ts.newSession(t, ctx, "cam")
	shut := shutdownIn(ctx, ts)
	waitFor(t, ctx, "draining", func() bool { return ts.srv.Ready() != nil })
	if done, err := returned(shut); done {
		t.Fatalf("Shutdown returned (%v) with a session left", err)
	}
	if r, _ := ts.do(t, ctx, http.MethodDelete, location, nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	if err := waitReturned(t, shut, "not drained once the last session left"); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}

	empty := newTestServer(t, func(c *Config) { c.NodeID = "node-e"; c.DrainTimeout = time.Hour })
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := empty.srv.Shutdown(sctx); err != nil {
		t.Fatalf("a server without sessions does not shut down at once: %v", err)
	}

	keep := newTestServer(t, func(c *Config) { c.NodeID = "node-k" })
	keep.catalog.set(liveEntry("cam", trackH264))
	keep.newSession(t, ctx, "cam")
	expired, cancelExpired := context.WithCancel(ctx)
	cancelExpired()
	if err := keep.srv.Shutdown(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	shut = shutdownIn(ctx, keep)
	if n := len(keep.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions while draining without DrainTimeout, want 1", n)
	}
	if err := keep.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitReturned(t, shut, "Close did not end it"); err != nil {
		t.Fatalf("Shutdown after Close = %v", err)
	}
	if n := len(keep.srv.Sessions()); n != 0 {
		t.Fatalf("after Close: %d sessions", n)
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
