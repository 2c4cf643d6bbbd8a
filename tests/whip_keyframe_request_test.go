package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/ingest/whip"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestWHIPKeyframeAskedForAJoiningViewer: a WHIP publisher that sends a
// keyframe only when it gets a PLI (no keyframe interval, as browsers) is
// live; a viewer joins a node that has no keyframe to give it (--start
// live); the node asks on the bus, the broker's WHIP ingest sends a PLI, and
// the viewer's first video is a keyframe within 3 s of its connection.
func TestWHIPKeyframeAskedForAJoiningViewer(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	nodeURL := whepNode(t, connect(), func(c *config.WHEP) { c.Start = "live" })

	ingestNC := connect()
	h := whipHandlerAskable(t, ingestNC)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})

	video := tstest.Demux(t, tstest.Read(t, "video.ts")).Kind(tsframes.KindVideo)
	var deltas [][]byte
	for _, f := range video[1:] {
		if f.Key {
			break
		}
		deltas = append(deltas, f.Data)
	}
	p := piontest.NewPublisher(t, nil)
	resp, answer := whepPost(t, ctx, srv.URL+"/whip/cam1", piontest.Offer(t, p.PC))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST = %d %q", resp.StatusCode, answer)
	}
	piontest.Answer(t, p.PC, answer)
	p.WaitConnected(t, whepTestTimeout)
	src := p.StartPLISource(t, video[0].Data, deltas)
	// The publication's own first PLI makes the stream live.
	whepWait(t, ctx, "the first keyframe", func() bool { return src.Keyframes.Load() >= 1 })

	v := newFirstVideoClient(t)
	resp, body := whepPost(t, ctx, nodeURL+"/whep/cam1", v.offer(t))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST = %d %q", resp.StatusCode, body)
	}
	plis := src.PLIs.Load()
	piontest.Answer(t, v.pc, body)
	select {
	case <-v.connected:
	case <-ctx.Done():
		t.Fatal("the viewer did not connect")
	}
	connected := time.Now()
	select {
	case nal := <-v.first:
		if nal != 7 && nal != 5 {
			t.Fatalf("the viewer's first video starts with NAL unit type %d, want an SPS (7) or IDR (5)", nal)
		}
		t.Logf("first video %s after the viewer connected", time.Since(connected).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatalf("no video within 3 s of the viewer's connection (%d PLIs before it joined, %d now)", plis, src.PLIs.Load())
	}
	if n := src.PLIs.Load(); n <= plis {
		t.Fatalf("the publisher got no PLI after the viewer joined (%d before, %d after)", plis, n)
	}
}

// whipHandlerAskable is whipHandler with the viewers' keyframe requests on
// nc and no keyframe interval of its own.
func whipHandlerAskable(t *testing.T, nc *nats.Conn) *whip.Handler {
	t.Helper()
	return whipHandlerWith(t, nc, whip.Config{KeyframeInterval: -1,
		KeyframeRequests: func(stream string, fn func()) (func(), error) {
			sub, err := bus.SubscribeKeyframeRequests(nc, stream, fn)
			if err != nil {
				return nil, err
			}
			return func() { _ = sub.Unsubscribe() }, nil
		}})
}

// firstVideoClient is a receive-only viewer that reports the NAL unit type
// its video starts with.
type firstVideoClient struct {
	pc        *webrtc.PeerConnection
	connected chan struct{}
	first     chan byte
}

func newFirstVideoClient(t *testing.T) *firstVideoClient {
	t.Helper()
	pc := piontest.RecvOnly(t, nil, webrtc.RTPCodecTypeVideo)
	c := &firstVideoClient{pc: pc, connected: make(chan struct{}), first: make(chan byte, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = pc.Close()
		wg.Wait()
	})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		sent := false
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if sent || len(pkt.Payload) < 2 {
				continue
			}
			sent = true
			nal := pkt.Payload[0] & 0x1f
			switch nal {
			case 24: // STAP-A: the first aggregated unit, after its size
				if len(pkt.Payload) > 3 {
					nal = pkt.Payload[3] & 0x1f
				}
			case 28: // FU-A
				nal = pkt.Payload[1] & 0x1f
			}
			c.first <- nal
		}
	})
	return c
}

func (c *firstVideoClient) offer(t *testing.T) string {
	t.Helper()
	return piontest.Offer(t, c.pc)
}
