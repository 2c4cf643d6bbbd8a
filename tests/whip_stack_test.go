package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/ingest/whip"
)

// TestWHIPPublisherPlaysThroughANode publishes av.ts from a pion WHIP
// client into the WHIP ingest (publications on an in-process NATS); a pion
// WHEP viewer of a whep-node on the same bus receives its H.264 and Opus.
func TestWHIPPublisherPlaysThroughANode(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	nodeURL := whepNode(t, connect(), nil)

	h := whipHandler(t, connect())
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})

	frames := tstest.Demux(t, tstest.Read(t, "av.ts")).Frames
	p := piontest.NewPublisher(t, nil)
	resp, answer := whepPost(t, ctx, srv.URL+"/whip/cam1", piontest.Offer(t, p.PC))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST = %d %q", resp.StatusCode, answer)
	}
	whipLoc := resp.Header.Get("Location")
	piontest.Answer(t, p.PC, answer)
	p.WaitConnected(t, whepTestTimeout)
	// The first second and a half (a keyframe, past the alignment wait)
	// makes the stream live; a viewer joins; the rest follows.
	split := 0
	for split < len(frames) && frames[split].PTS-frames[0].PTS < 135000 {
		split++
	}
	p.Send(t, frames[:split], 1)

	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	resp, body := whepPost(t, ctx, nodeURL+"/whep/cam1", c.offer(t))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST = %d %q", resp.StatusCode, body)
	}
	c.answer(t, body)
	p.Send(t, frames[split:], 1)
	c.waitPackets(t, ctx, mimeH264, 100)
	c.waitPackets(t, ctx, mimeOpus, 100)
	if resp, body := whepDo(t, ctx, http.MethodDelete, srv.URL+whipLoc, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("WHIP DELETE = %d %q", resp.StatusCode, body)
	}
}

// whipHandler is a WHIP ingest whose publications (memory storage) publish
// on nc; the cleanup shuts the publications down.
func whipHandler(t *testing.T, nc *nats.Conn) *whip.Handler {
	t.Helper()
	return whipHandlerWith(t, nc, whip.Config{})
}

// whipHandlerWith is whipHandler with cfg (its SettingEngine and Logger set
// to the tests' loopback ones).
func whipHandlerWith(t *testing.T, nc *nats.Conn, cfg whip.Config) *whip.Handler {
	t.Helper()
	pubs, err := ingest.NewPublications(ingest.Config{
		NewPublisher: ingest.BusPublishers(nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}}),
		Logger:       whepLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := pubs.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	})
	se := piontest.Loopback()
	cfg.SettingEngine, cfg.Logger = &se, whepLogger()
	return whip.NewHandler(pubs, cfg)
}
