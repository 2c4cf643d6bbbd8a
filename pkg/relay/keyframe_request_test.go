package relay

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
)

// keyframeRequests counts the keyframe requests of stream name on nc up to
// a sentinel published after them by the test (same connection: in order).
type keyframeRequests struct {
	nc   *nats.Conn
	subj string
	msgs chan *nats.Msg
}

func watchKeyframeRequests(t *testing.T, nc *nats.Conn, name string) *keyframeRequests {
	t.Helper()
	subj, err := bus.KeyframeRequestSubject(name)
	if err != nil {
		t.Fatal(err)
	}
	k := &keyframeRequests{nc: nc, subj: subj, msgs: make(chan *nats.Msg, 64)}
	sub, err := nc.ChanSubscribe(subj, k.msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return k
}

// count returns the requests received before a sentinel published now.
func (k *keyframeRequests) count(t *testing.T) int {
	t.Helper()
	if err := k.nc.Publish(k.subj, []byte("sentinel")); err != nil {
		t.Fatal(err)
	}
	n := 0
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-k.msgs:
			if string(m.Data) == "sentinel" {
				return n
			}
			if len(m.Data) != 0 {
				t.Fatalf("a keyframe request with a payload: %q", m.Data)
			}
			n++
		case <-deadline:
			t.Fatal("the sentinel did not arrive")
		}
	}
}

// TestViewerWithoutKeyframeAsksThePublisher: a viewer that starts while the
// node has no keyframe to give it (here --start live) makes the node ask the
// publisher for one on whepcast.keyframe.NAME, at most once per
// KeyframeRequestInterval per stream; a viewer that starts from a cached
// keyframe asks nothing.
func TestViewerWithoutKeyframeAsksThePublisher(t *testing.T) {
	checkLeaks(t)
	events := readFixture(t, "av.ts")
	nc := natstest.EmbeddedConn(t)

	t.Run("live start", func(t *testing.T) {
		pub := newPublisher(t, nc, "kflive", 1)
		waitDone(t, feed{events: events[:100]}.start(t, pub))
		reqs := watchKeyframeRequests(t, nc, "kflive")
		r := newBusRelay(t, Config{Conn: nc, Start: StartLive})
		ann := busAnnouncement("kflive", 1, events)
		a, _ := join(t, r, ann)
		b, _ := join(t, r, ann)
		if n := reqs.count(t); n != 0 {
			t.Fatalf("%d keyframe requests before any viewer started, want 0", n)
		}
		first := time.Now()
		a.Start()
		b.Start()
		soon := time.Since(first) < KeyframeRequestInterval
		n := reqs.count(t)
		if soon && n != 1 || !soon && n < 1 {
			t.Fatalf("%d keyframe requests for two viewers started within %s, want 1", n, time.Since(first))
		}
	})

	t.Run("GOP start with a keyframe cached", func(t *testing.T) {
		pub := newPublisher(t, nc, "kfgop", 1)
		waitDone(t, feed{events: events[:100]}.start(t, pub))
		reqs := watchKeyframeRequests(t, nc, "kfgop")
		r := newBusRelay(t, Config{Conn: nc})
		a, rec := join(t, r, busAnnouncement("kfgop", 1, events))
		// The hub's subscription fills the GOP cache from the bus's latest
		// keyframe; a viewer started before that would rightly ask.
		waitKeyed(t, a)
		a.Start()
		rec.waitCount(t, 1)
		if n := reqs.count(t); n != 0 {
			t.Fatalf("%d keyframe requests for a viewer started from the cached GOP, want 0", n)
		}
	})
}

// waitKeyed waits until v's hub has cached a keyframe.
func waitKeyed(t *testing.T, v *Viewer) {
	t.Helper()
	select {
	case <-v.hub.keyed:
	case <-time.After(5 * time.Second):
		t.Fatal("no keyframe cached")
	}
}
