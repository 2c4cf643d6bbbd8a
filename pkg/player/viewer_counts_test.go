package player

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
)

// TestViewerCountsAcrossNodes: two nodes answer on ViewerCountSubject; the
// counter sums their streams, counts the nodes, reuses its result for
// MaxAge and gathers anew after it.
func TestViewerCountsAcrossNodes(t *testing.T) {
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	var asked atomic.Int32
	serve := func(node string, counts map[string]int) {
		nc := natstest.Connect(t, srv)
		sub, err := ServeViewerCounts(nc, node, func() map[string]int {
			asked.Add(1)
			return counts
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	serve("n1", map[string]int{"demo": 3, "cam": 1})
	serve("n2", map[string]int{"demo": 2, "other": 0})

	nc := natstest.Connect(t, srv)
	const maxAge = 500 * time.Millisecond
	vc := NewNATSViewerCounts(nc, 300*time.Millisecond, maxAge)
	ctx := t.Context()
	got, err := vc.ViewerCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"demo": 5, "cam": 1}; got.Nodes != 2 || !maps.Equal(got.Streams, want) {
		t.Fatalf("totals %+v, want %v from 2 nodes", got, want)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("nodes asked %d times, want 2", n)
	}
	again, err := vc.ViewerCounts(ctx)
	if err != nil || !again.At.Equal(got.At) || asked.Load() != 2 {
		t.Fatalf("within MaxAge: %+v, %v, %d requests answered; want the same totals and no new request", again, err, asked.Load())
	}
	// MaxAge is a time, not an event: wait until it has passed.
	time.Sleep(time.Until(got.At.Add(maxAge)))
	fresh, err := vc.ViewerCounts(ctx)
	if err != nil || !fresh.At.After(got.At) || asked.Load() != 4 || fresh.Streams["demo"] != 5 {
		t.Fatalf("after MaxAge: %+v, %v, %d answers; want new totals from both nodes", fresh, err, asked.Load())
	}
}

// TestViewerCountsNoNode: without any node the totals are empty after the
// wait, and a cancelled context is an error.
func TestViewerCountsNoNode(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	vc := NewNATSViewerCounts(nc, 50*time.Millisecond, 0)
	got, err := vc.ViewerCounts(t.Context())
	if err != nil || got.Nodes != 0 || len(got.Streams) != 0 {
		t.Fatalf("no node: %+v, %v", got, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewNATSViewerCounts(nc, time.Second, 0).ViewerCounts(ctx); err == nil {
		t.Fatal("cancelled context: no error")
	}
}
