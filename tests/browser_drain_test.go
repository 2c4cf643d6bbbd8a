//go:build external

package tests

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/demo"
	"github.com/whepcast/whepcast/pkg/player"
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/whep"
)

// TestBrowserDrainMovesPlayer plays the demo from node A behind a
// load balancer (POSTs to a ready node, other requests round-robin), drains
// A, and checks that the built-in player follows the reconnect event to
// node B without stopping, and deletes its session on A.
func TestBrowserDrainMovesPlayer(t *testing.T) {
	checkLeaks(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	pub, err := bus.NewPublisher(ctx, nc, demo.StreamName, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() { loopDone <- demo.Loop(loopCtx, pub, demo.Options{Logger: logger}) }()
	t.Cleanup(func() {
		stopLoop()
		<-loopDone
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pub.Shutdown(c)
	})
	watchCtx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	watcher, err := bus.WatchCatalog(watchCtx, nc, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watcher.Close)
	rel, err := relay.New(relay.Config{Conn: nc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rel.Close)
	newNode := func(id string) *whep.Server {
		ws, err := whep.New(whep.Config{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: 10 * time.Second, MaxWaiting: 8,
			DrainTimeout: time.Minute, NodeID: id}, whep.Deps{Conn: nc, Catalog: watcher, Media: whep.FromRelay(rel), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ws.Close(); err != nil {
				t.Errorf("close %s: %v", id, err)
			}
		})
		return ws
	}
	a, b := newNode("node-a"), newNode("node-b")
	ha, hb := a.Handler(), b.Handler()
	var n atomic.Int64
	var postsB atomic.Int64
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Count(r.URL.Path, "/") == 2 {
			if a.Ready() == nil {
				ha.ServeHTTP(w, r)
			} else {
				postsB.Add(1)
				hb.ServeHTTP(w, r)
			}
			return
		}
		if n.Add(1)%2 == 0 {
			ha.ServeHTTP(w, r)
		} else {
			hb.ServeHTTP(w, r)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/whep/", front)
	mux.Handle("/", player.Handler(watcher, logger))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	bctx := startChromium(t)
	if _, err := chromedp.Run(bctx, chromedp.Navigate(srv.URL+"/play/demo")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(bctx, 30*time.Second, `document.body.dataset.state === 'playing' && whepcast.events === 'open' && whepcast.viewers === 1 && whepcast.streamActive === true && document.getElementById('o-viewers').textContent === '1'`); err != nil {
		st, _ := evalJS[map[string]any](bctx, `({state: whepcast.state, message: whepcast.message, events: whepcast.events, viewers: whepcast.viewers, active: whepcast.streamActive})`)
		t.Fatalf("%v; %v", err, st)
	}
	if len(a.Sessions()) != 1 || len(b.Sessions()) != 0 {
		t.Fatalf("sessions A %d B %d", len(a.Sessions()), len(b.Sessions()))
	}
	drainCtx, cancelDrain := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancelDrain()
	if err := a.Shutdown(drainCtx); err != nil {
		t.Fatalf("A not drained: the player did not leave (%v)", err)
	}
	if err := waitJS(bctx, 20*time.Second, `document.body.dataset.state === 'playing' && whepcast.reconnects === 1 && whepcast.events === 'open'`); err != nil {
		st, _ := evalJS[map[string]any](bctx, `({state: whepcast.state, message: whepcast.message, events: whepcast.events, reconnects: whepcast.reconnects, attempts: whepcast.attempts})`)
		t.Fatalf("%v; %v", err, st)
	}
	if len(b.Sessions()) != 1 || postsB.Load() != 1 {
		t.Fatalf("sessions on B %d, POSTs to B %d", len(b.Sessions()), postsB.Load())
	}
	if err := waitJS(bctx, 10*time.Second, `whepcast.refreshStats().then(s => s.video !== null && s.video.framesDecoded > 30)`); err != nil {
		t.Fatal(err)
	}
	attempts, _ := evalJS[float64](bctx, `whepcast.attempts`)
	if attempts != 2 {
		t.Errorf("attempts %v, want 2 (the first session and the move)", attempts)
	}
}
