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
// the sync fixtures: the first large packet (more than 50 bytes) after at
// least ten of digital silence (libopus makes 3-byte packets of it).
func beepOnsets(sizes []int) []int {
	var out []int
	quiet := 0
	for i, n := range sizes {
		if n > 50 {
			if quiet >= 10 {
				out = append(out, i)
			}
			quiet = 0
		} else if n <= 10 {
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
	rtpSize []int
	rtpAt   []time.Time
}

func (p *delayProbe) delays(t *testing.T) []time.Duration {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	busBeeps, rtpBeeps := beepOnsets(p.busSize), beepOnsets(p.rtpSize)
	var out []time.Duration
	for _, r := range rtpBeeps {
		arrived := p.rtpAt[r]
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
// broker to the viewer receiving its Opus packet is measured at each beep
// (one a second). The AAC stream's median may exceed the Opus stream's by
// at most 40 ms.
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
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					pkt, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					if tr.Kind() != webrtc.RTPCodecTypeAudio {
						continue
					}
					now := time.Now()
					p.mu.Lock()
					p.rtpSize, p.rtpAt = append(p.rtpSize, len(pkt.Payload)), append(p.rtpAt, now)
					p.mu.Unlock()
				}
			}()
		})
		var resp *http.Response
		var answer string
		whepWait(t, ctx, p.stream+" to be playable", func() bool {
			resp, answer = whepPost(t, ctx, url+"/whep/"+p.stream, piontest.Offer(t, pc))
			return resp.StatusCode == http.StatusCreated
		})
		piontest.Answer(t, pc, answer)
	}
	// 12 s of fixture: wait for the publications to end.
	pubWG.Wait()
	var medians []time.Duration
	for _, p := range probes {
		d := p.delays(t)
		if len(d) < 5 {
			t.Fatalf("%s: %d beeps measured at the viewer, want at least 5", p.stream, len(d))
		}
		slices.Sort(d)
		t.Logf("%s: source frame published -> viewer's Opus packet, at each beep: %v (median %v)", p.stream, d, d[len(d)/2])
		medians = append(medians, d[len(d)/2])
	}
	added := medians[1] - medians[0]
	t.Logf("FIGURE transcode_added_audio_delay_ms=%.1f (AAC %v, Opus %v; medians over the beeps)",
		float64(added.Microseconds())/1000, medians[1], medians[0])
	if added > 40*time.Millisecond {
		t.Errorf("the transcoded stream's audio reaches the viewer %v later than the same stream's in Opus, want at most 40 ms", added)
	}
}
