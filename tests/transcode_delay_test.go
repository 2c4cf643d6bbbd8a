//go:build external

package tests

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/transcode"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// audioClock records when each source audio frame of a publication was
// handed to the broker's publisher (its PTS and the wall time).
type audioClock struct {
	ingest.Publisher
	mu   sync.Mutex
	pts  []int64
	when []time.Time
}

func (c *audioClock) Publish(ctx context.Context, f tsframes.Frame) error {
	if f.Kind == tsframes.KindAudio {
		c.mu.Lock()
		c.pts, c.when = append(c.pts, f.PTS), append(c.when, time.Now())
		c.mu.Unlock()
	}
	return c.Publisher.Publish(ctx, f)
}

// before is when the last source audio frame starting before end was
// published: the one an Opus packet ending at end needs last.
func (c *audioClock) before(end int64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for i, p := range c.pts {
		if p < end {
			t = c.when[i]
		}
	}
	return t, !t.IsZero()
}

// pesPaced publishes what a Demuxer reads at real time, a PES at a time:
// the Opus packets of one PES (More set on all but the last) go out
// together at the first one's DTS, as a live source's PES arrives whole
// (stagePaced would spread them over the PES's duration, and the bus holds
// them until the last).
type pesPaced struct {
	stagePaced
	more bool // the previous frame has a next packet in the same PES
}

func (h *pesPaced) Frame(f tsframes.Frame) error {
	if h.more {
		h.more = f.More
		return h.pub.Publish(h.ctx, f)
	}
	h.more = f.More
	return h.stagePaced.Frame(f)
}

// beepOnsets returns the indexes of the Opus packets that start a beep of
// the sync fixtures: the first loud packet after at least ten quiet ones.
// The fixtures are silent most of the time, so the 10th percentile of the
// sizes is a silent packet's (3 bytes of digital silence from libopus;
// about 130 once AC-3's coding noise is in it); a beep's packets are more
// than 1.6 times that plus 20 bytes.
func beepOnsets(sizes []int) []int {
	if len(sizes) == 0 {
		return nil
	}
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	loud := sorted[len(sorted)/10]*8/5 + 20
	var out []int
	quiet := 0
	for i, n := range sizes {
		if n > loud {
			if quiet >= 10 {
				out = append(out, i)
			}
			quiet = 0
		} else {
			quiet++
		}
	}
	return out
}

// delayProbe publishes a sync fixture on stream through the transcoding
// stage, paced at real time, and measures, for each beep a pion viewer
// receives, the time from the source audio frame holding the beep reaching
// the broker's publisher to the viewer receiving the beep's first Opus
// packet.
type delayProbe struct {
	stream, fixture string
	clock           *audioClock

	mu      sync.Mutex
	busPTS  []int64 // the Opus frames on the bus, in order
	busSize []int
	busAt   []time.Time
	rtpSize []int
	rtpAt   []time.Time
}

// delays returns, at each beep, the time from its source frame reaching
// the publisher to its first Opus packet reaching the bus, or with
// atViewer the viewer.
func (p *delayProbe) delays(t *testing.T, atViewer bool) []time.Duration {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	busBeeps := beepOnsets(p.busSize)
	sizes, at := p.busSize, p.busAt
	if atViewer {
		sizes, at = p.rtpSize, p.rtpAt
	}
	var out []time.Duration
	for _, r := range beepOnsets(sizes) {
		arrived := at[r]
		// The beep on the bus whose source frame was published last
		// before the viewer got it (the beeps are 1 s apart).
		var best time.Duration = -1
		for _, b := range busBeeps {
			sent, ok := p.clock.before(p.busPTS[b] + 1800)
			if !ok || sent.After(arrived) {
				continue
			}
			if d := arrived.Sub(sent); best < 0 || d < best {
				best = d
			}
		}
		if best >= 0 && best < 900*time.Millisecond {
			out = append(out, best)
		}
	}
	return out
}

// TestTranscodeAddedDelay: the same sync fixture, its audio in Opus and in
// AAC, published at once through the transcoding stage to a whep-node, a
// pion viewer on each; the audio's delay from the source frame reaching the
// broker to its Opus packet reaching the bus is measured at each beep (one
// a second). The AAC stream's median may exceed the Opus stream's by at
// most 40 ms. The delay to the viewer is logged: the whep-node sends a
// stream with derived audio evenly (relay's smoother), each packet at its
// media time rather than with the whole PES it came in, so a beep late in a
// 350 ms PES leaves up to 350 ms after the PES; a browser would hold it as
// long in its jitter buffer anyway.
func TestTranscodeAddedDelay(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	nc := connect()
	stage, err := transcode.New(nc, prometheus.NewRegistry(), transcode.Config{Mode: transcode.ModeAudio, Logger: whepLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stage.Close)
	pubs := stage.Publishers(ingest.BusPublishers(nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}}))
	url := whepNode(t, connect(), nil)

	probes := []*delayProbe{{stream: "dopus", fixture: "sync_opus.ts"}, {stream: "daac", fixture: "sync_aac.ts"}}
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubWG sync.WaitGroup
	t.Cleanup(func() { stopPub(); pubWG.Wait() })
	for _, p := range probes {
		data, err := os.ReadFile(filepath.Join("..", "testdata", p.fixture))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := pubs(ctx, p.stream, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.clock = &audioClock{Publisher: pub}
		sub, err := bus.Subscribe(ctx, nc, p.stream, bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
			if !m.IsFrame() || m.Frame.Codec != tsframes.CodecOpus {
				return
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.busPTS, p.busSize = append(p.busPTS, m.Frame.PTS), append(p.busSize, len(m.Frame.Data))
			p.busAt = append(p.busAt, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			h := &pesPaced{stagePaced: stagePaced{ctx: pubCtx, pub: p.clock}}
			if err := tsframes.NewDemuxer(bytes.NewReader(data), tsframes.Options{SourceAudio: true}).Run(pubCtx, h); err != nil && pubCtx.Err() == nil {
				t.Errorf("publishing %s: %v", p.stream, err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = pub.Shutdown(sctx)
		}()
	}

	var wg sync.WaitGroup
	for _, p := range probes {
		pc := piontest.RecvOnly(t, nil, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
		t.Cleanup(func() { _ = pc.GracefulClose(); wg.Wait() })
		piontest.ReadRTP(pc, &wg, func(tr *webrtc.TrackRemote, pkt *rtp.Packet, now time.Time) {
			if tr.Kind() != webrtc.RTPCodecTypeAudio {
				return
			}
			p.mu.Lock()
			p.rtpSize, p.rtpAt = append(p.rtpSize, len(pkt.Payload)), append(p.rtpAt, now)
			p.mu.Unlock()
		})
		var resp *http.Response
		var answer string
		whepWait(t, ctx, p.stream+" to be playable", func() bool {
			resp, answer = whepPost(t, ctx, url+"/whep/"+p.stream, piontest.Offer(t, pc))
			return resp.StatusCode == http.StatusCreated
		})
		piontest.Answer(t, pc, answer)
	}
	// The fixture's 20 s: wait for the publications to end.
	pubWG.Wait()
	median := func(p *delayProbe, atViewer bool, where string) time.Duration {
		d := p.delays(t, atViewer)
		if len(d) < 10 {
			t.Fatalf("%s: %d beeps measured at the %s, want at least 10", p.stream, len(d), where)
		}
		slices.Sort(d)
		t.Logf("%s: source frame published -> Opus packet at the %s, at each beep: %v (median %v)", p.stream, where, d, d[len(d)/2])
		return d[len(d)/2]
	}
	added := median(probes[1], false, "bus") - median(probes[0], false, "bus")
	viewer := median(probes[1], true, "viewer") - median(probes[0], true, "viewer")
	t.Logf("FIGURE transcode_added_audio_delay_ms=%.1f (on the bus) viewer_ms=%.1f (the whep-node sends the derived audio evenly, at its media time: see docs/transcoding.md)",
		float64(added.Microseconds())/1000, float64(viewer.Microseconds())/1000)
	if added > 40*time.Millisecond {
		t.Errorf("the transcoded stream's audio reaches the bus %v later than the same stream's in Opus, want at most 40 ms", added)
	}
}
