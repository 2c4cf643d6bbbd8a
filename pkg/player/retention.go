package player

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/bus"
)

// retentionCacheFor is how long BusRetention reuses a stream's answer, and
// retentionCacheSize the most streams it remembers.
const (
	retentionCacheFor  = 2 * time.Second
	retentionCacheSize = 4096
)

// BusRetention is the Retention of the streams on the bus: the store time of
// the oldest keyframe each holds (bus.OldestKeyframe), reused for 2 s so
// that the list's event streams cost one direct get per stream and period
// however many pages are open. It is safe for concurrent use.
type BusRetention struct {
	js jetstream.JetStream

	mu    sync.Mutex
	cache map[string]oldestAt
}

type oldestAt struct {
	oldest, at time.Time
}

// NewBusRetention returns the Retention of the streams of js.
func NewBusRetention(js jetstream.JetStream) *BusRetention {
	return &BusRetention{js: js, cache: map[string]oldestAt{}}
}

// Oldest returns the store time of the oldest keyframe of stream, or
// bus.OldestKeyframe's error.
func (b *BusRetention) Oldest(ctx context.Context, stream string) (time.Time, error) {
	now := time.Now()
	b.mu.Lock()
	c, ok := b.cache[stream]
	b.mu.Unlock()
	if ok && now.Sub(c.at) < retentionCacheFor {
		return c.oldest, nil
	}
	t, err := bus.OldestKeyframe(ctx, b.js, stream)
	if err != nil {
		return time.Time{}, err
	}
	b.mu.Lock()
	if len(b.cache) >= retentionCacheSize {
		clear(b.cache)
	}
	b.cache[stream] = oldestAt{oldest: t, at: now}
	b.mu.Unlock()
	return t, nil
}
