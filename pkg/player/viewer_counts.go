package player

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ViewerCountSubject is the NATS subject every whep-node answers on with its
// sessions per stream (ServeViewerCounts); the stream list sums the answers
// (NATSViewerCounts).
const ViewerCountSubject = "whepcast.viewers"

// Viewer count tuning: how long a gathering waits for the nodes' answers,
// how long its result is reused, and the most answers it reads.
const (
	DefaultViewerCountWait   = 250 * time.Millisecond
	DefaultViewerCountMaxAge = 2 * time.Second
	maxViewerCountAnswers    = 4096
)

// NodeViewers is one node's answer on ViewerCountSubject.
type NodeViewers struct {
	Node    string         `json:"node"`
	Streams map[string]int `json:"streams"`
}

// ServeViewerCounts answers every request on ViewerCountSubject with the
// node's sessions per stream, as count returns them, until the returned
// subscription is unsubscribed (or nc closes). count runs on the
// subscription's goroutine.
func ServeViewerCounts(nc *nats.Conn, node string, count func() map[string]int) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(ViewerCountSubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		body, err := json.Marshal(NodeViewers{Node: node, Streams: count()})
		if err != nil {
			return
		}
		_ = m.Respond(body)
	})
	if err != nil {
		return nil, fmt.Errorf("player: viewer counts: %w", err)
	}
	return sub, nil
}

// ViewerTotals are the viewers of each stream summed over the nodes that
// answered.
type ViewerTotals struct {
	Streams map[string]int
	// Nodes is the number of nodes that answered.
	Nodes int
	// At is when the answers were gathered.
	At time.Time
}

// ViewerCounter tells the stream list how many viewers each stream has.
type ViewerCounter interface {
	ViewerCounts(ctx context.Context) (ViewerTotals, error)
}

// NATSViewerCounts gathers the nodes' counts with one request on
// ViewerCountSubject, reading every answer that arrives within Wait; a
// result is reused for MaxAge, and concurrent callers share one gathering.
// It is safe for concurrent use.
type NATSViewerCounts struct {
	nc     *nats.Conn
	wait   time.Duration
	maxAge time.Duration

	mu   sync.Mutex // held during a gathering
	last ViewerTotals
}

// NewNATSViewerCounts returns a counter on nc; wait and maxAge of 0 take
// DefaultViewerCountWait and DefaultViewerCountMaxAge.
func NewNATSViewerCounts(nc *nats.Conn, wait, maxAge time.Duration) *NATSViewerCounts {
	if wait <= 0 {
		wait = DefaultViewerCountWait
	}
	if maxAge <= 0 {
		maxAge = DefaultViewerCountMaxAge
	}
	return &NATSViewerCounts{nc: nc, wait: wait, maxAge: maxAge}
}

// ViewerCounts returns the totals gathered at most MaxAge ago, gathering
// anew when they are older. It fails when the request cannot be sent or
// ctx ends before the answers are in.
func (v *NATSViewerCounts) ViewerCounts(ctx context.Context) (ViewerTotals, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.last.At.IsZero() && time.Since(v.last.At) < v.maxAge {
		return v.last, nil
	}
	t, err := v.gather(ctx)
	if err != nil {
		return ViewerTotals{}, err
	}
	v.last = t
	return t, nil
}

func (v *NATSViewerCounts) gather(ctx context.Context) (ViewerTotals, error) {
	inbox := v.nc.NewInbox()
	sub, err := v.nc.SubscribeSync(inbox)
	if err != nil {
		return ViewerTotals{}, fmt.Errorf("player: viewer counts: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := v.nc.PublishRequest(ViewerCountSubject, inbox, nil); err != nil {
		return ViewerTotals{}, fmt.Errorf("player: viewer counts: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, v.wait)
	defer cancel()
	t := ViewerTotals{Streams: map[string]int{}}
	seen := map[string]bool{}
	for t.Nodes < maxViewerCountAnswers {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return ViewerTotals{}, fmt.Errorf("player: viewer counts: %w", ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
				break // the wait is over (or no node listens): what arrived is the answer
			}
			return ViewerTotals{}, fmt.Errorf("player: viewer counts: %w", err)
		}
		var nv NodeViewers
		if json.Unmarshal(m.Data, &nv) != nil || seen[nv.Node] {
			continue
		}
		seen[nv.Node] = true
		t.Nodes++
		for s, n := range nv.Streams {
			if n > 0 {
				t.Streams[s] += n
			}
		}
	}
	t.At = time.Now()
	return t, nil
}
