package tests

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/config"
)

// TestFaultHeldPOSTFlood floods a node with POSTs for a stream that never
// starts: at most --max-waiting are held (409 + Retry-After when the wait
// times out), every other one is refused at once with 503 + Retry-After;
// the held gauge returns to 0, no JetStream stream or consumer is created,
// and the heap does not grow with the rounds.
func TestFaultHeldPOSTFlood(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	const (
		maxWaiting = 32
		flood      = 320
		rounds     = 3
		wait       = 3 * time.Second
		// heapBound bounds the growth of the heap in use over the rounds.
		heapBound = 4 << 20
	)
	connect := whepBus(t)
	nc := connect()
	url := whepNode(t, nc, func(c *config.WHEP) { c.MaxWaiting, c.WaitTimeout = maxWaiting, wait })
	offer := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio).offer(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streamsBefore := jetStreamState(t, ctx, js)

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConns: -1}}
	defer client.CloseIdleConnections()
	var before uint64
	for round := range rounds {
		if round == 1 {
			// The first round warms up pools and buffers.
			before = heap()
		}
		type result struct {
			status int
			retry  string
			took   time.Duration
		}
		results := make(chan result, flood)
		var wg sync.WaitGroup
		for range flood {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/whep/never", strings.NewReader(offer))
				req.Header.Set("Content-Type", "application/sdp")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("POST: %v", err)
					return
				}
				resp.Body.Close()
				results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)}
			}()
		}
		whepWait(t, ctx, "the held requests", func() bool {
			return whepMetric(t, url, "whepcast_whep_held_requests") == maxWaiting
		})
		wg.Wait()
		close(results)
		var held, refused int
		for r := range results {
			switch {
			case r.status == http.StatusConflict && r.retry != "" && r.took >= wait-100*time.Millisecond:
				held++
			case r.status == http.StatusServiceUnavailable && r.retry != "" && r.took < wait:
				refused++
			default:
				t.Fatalf("round %d: %d Retry-After %q after %v", round, r.status, r.retry, r.took)
			}
		}
		if held != maxWaiting || refused != flood-maxWaiting {
			t.Fatalf("round %d: %d held then 409, %d refused with 503; want %d and %d", round, held, refused, maxWaiting, flood-maxWaiting)
		}
		if got := whepMetric(t, url, "whepcast_whep_held_requests"); got != 0 {
			t.Fatalf("round %d: %v held requests after the flood", round, got)
		}
	}
	after := heap()
	t.Logf("FIGURE flood_heap_growth_kib=%d", (int64(after)-int64(before))/1024)
	if after > before+heapBound {
		t.Fatalf("heap in use grew from %d to %d bytes over %d floods of %d POSTs", before, after, rounds-1, flood)
	}
	if got := jetStreamState(t, ctx, js); got != streamsBefore {
		t.Fatalf("JetStream streams and consumers: %s, before the flood %s", got, streamsBefore)
	}
}

// jetStreamState lists the JetStream streams with their consumer counts:
// "NAME:CONSUMERS ...".
func jetStreamState(t *testing.T, ctx context.Context, js jetstream.JetStream) string {
	t.Helper()
	var b strings.Builder
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		s, err := js.Stream(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(n + ":" + strconv.Itoa(info.State.Consumers) + " ")
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
