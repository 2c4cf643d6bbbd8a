package relay

import (
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/pkg/bus"
)

// KeyframeRequestInterval is the shortest time between two keyframe
// requests of a stream from one node.
const KeyframeRequestInterval = 500 * time.Millisecond

// keyframeRequester asks the publishers of streams for a keyframe on the
// bus (bus.RequestKeyframe), at most once per KeyframeRequestInterval per
// stream. A nil requester asks nothing.
type keyframeRequester struct {
	nc  *nats.Conn
	log *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // by stream: the latest request
}

func newKeyframeRequester(nc *nats.Conn, log *slog.Logger) *keyframeRequester {
	return &keyframeRequester{nc: nc, log: log, last: make(map[string]time.Time)}
}

// request asks for a keyframe of stream name unless one was asked for less
// than KeyframeRequestInterval ago. It does not block on the network.
func (k *keyframeRequester) request(name string) {
	if k == nil {
		return
	}
	now := time.Now()
	k.mu.Lock()
	if now.Sub(k.last[name]) < KeyframeRequestInterval {
		k.mu.Unlock()
		return
	}
	k.last[name] = now
	// Forget streams not asked for lately: the map stays as small as the
	// streams that ask.
	if len(k.last) > 64 {
		for n, t := range k.last {
			if now.Sub(t) >= KeyframeRequestInterval {
				delete(k.last, n)
			}
		}
	}
	k.mu.Unlock()
	if err := bus.RequestKeyframe(k.nc, name); err != nil {
		k.log.Debug("keyframe request not sent", "stream", name, "error", err)
		return
	}
	k.log.Debug("keyframe requested: a viewer starts and no keyframe is cached", "stream", name)
}

// askKeyframe asks the stream's publisher for a keyframe for a viewer that
// starts without one (not for a time-shifted viewer: it reads the log).
func (h *hub) askKeyframe() {
	if !h.cfg.shifted {
		h.cfg.keyframes.request(h.name)
	}
}
