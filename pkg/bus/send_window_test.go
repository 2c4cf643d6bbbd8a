package bus

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
)

// windowReports records what a sendWindow reports, in order.
type windowReports struct {
	mu      sync.Mutex
	subject []string
	errs    []error
	changed chan struct{}
}

func newWindowReports() *windowReports { return &windowReports{changed: make(chan struct{}, 1)} }

func (r *windowReports) add(m *nats.Msg, err error) {
	r.mu.Lock()
	r.subject = append(r.subject, m.Subject)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// wait returns the first n reports, failing the test after 10 s.
func (r *windowReports) wait(t *testing.T, n int) ([]string, []error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.errs) >= n {
			s, e := append([]string(nil), r.subject[:n]...), append([]error(nil), r.errs[:n]...)
			r.mu.Unlock()
			return s, e
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("timeout waiting for %d reports", n)
		}
	}
}

// newTestWindow opens a window on nc that reports to r, closed at cleanup.
func newTestWindow(t *testing.T, nc *nats.Conn, size int, r *windowReports, timeout, check time.Duration) *sendWindow {
	t.Helper()
	w, err := newSendWindowTimeout(nc, size, func(m *nats.Msg) { r.add(m, nil) }, r.add, timeout, check)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.close(ctx)
	})
	return w
}

// windowServer starts a server with the memory stream W on w.> and
// connects to it; mute.> has interest without JetStream: a publish there
// is never answered.
func windowServer(t *testing.T, ctx context.Context, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv, opts...)
	js := newJS(t, nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"w.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("mute.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestSendWindowReports: every message is reported once, in publishing
// order, with what JetStream answered: stored, a JetStream error, no
// stream, no answer within the timeout; and the window is empty after.
func TestSendWindowReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc, js := windowServer(t, ctx)
	r := newWindowReports()
	w := newTestWindow(t, nc, 64, r, 300*time.Millisecond, 50*time.Millisecond)
	var want []string
	publish := func(subj string, h nats.Header) {
		t.Helper()
		if err := w.publish(&nats.Msg{Subject: subj, Header: h, Data: []byte(subj)}, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		want = append(want, subj)
	}
	for i := range 20 {
		publish("w.ok."+strconv.Itoa(i), nil)
	}
	publish("w.wrong", nats.Header{"Nats-Expected-Stream": []string{"OTHER"}})
	publish("none.x", nil)
	publish("mute.x", nil)
	publish("w.after", nil)
	subjects, errs := r.wait(t, len(want))
	for i, s := range subjects {
		if s != want[i] {
			t.Fatalf("report %d is %s, want %s (publishing order)", i, s, want[i])
		}
	}
	for i, err := range errs {
		var api *jetstream.APIError
		switch subj := subjects[i]; {
		case subj == "w.wrong":
			if !errors.As(err, &api) {
				t.Errorf("%s: %v, want the JetStream error", subj, err)
			}
		case subj == "none.x":
			if !errors.Is(err, jetstream.ErrNoStreamResponse) {
				t.Errorf("%s: %v, want ErrNoStreamResponse", subj, err)
			}
		case subj == "mute.x":
			if !errors.Is(err, nats.ErrTimeout) {
				t.Errorf("%s: %v, want a timeout", subj, err)
			}
		case err != nil:
			t.Errorf("%s: %v, want stored", subj, err)
		}
	}
	// A message's slot is freed right after its report.
	pollUntil(t, ctx, "an empty window", func() bool { return w.inFlight() == 0 })
	info, err := js.Stream(ctx, "W")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 21 {
		t.Fatalf("stream holds %d messages, want the 21 acknowledged", got)
	}
}

// TestSendWindowFailsInFlightOnDisconnect: the messages awaiting their
// acknowledgement when the connection starts reconnecting fail at once
// with nats.ErrDisconnected; the window then goes on.
func TestSendWindowFailsInFlightOnDisconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc, _ := windowServer(t, ctx, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	r := newWindowReports()
	w := newTestWindow(t, nc, 8, r, time.Hour, time.Hour)
	for i := range 3 {
		if err := w.publish(&nats.Msg{Subject: "mute." + strconv.Itoa(i)}, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	_, errs := r.wait(t, 3)
	for i, err := range errs {
		if !errors.Is(err, nats.ErrDisconnected) {
			t.Fatalf("message %d: %v, want nats.ErrDisconnected", i, err)
		}
	}
	// Reconnected, the window publishes again.
	pollUntil(t, ctx, "the reconnection", nc.IsConnected)
	if err := w.publish(&nats.Msg{Subject: "w.after"}, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if subjects, errs := r.wait(t, 4); subjects[3] != "w.after" || errs[3] != nil {
		t.Fatalf("after the reconnect: %s %v, want w.after stored", subjects[3], errs[3])
	}
}
