package tests

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// pacedTS reads a TS as a live encoder sends it: each video PES when its
// PTS is due (real time from the first), the other packets with the video
// before which they are. It stops before video PES gateAt until gate is
// closed.
type pacedTS struct {
	ctx    context.Context
	ts     []byte
	video  uint16
	pos    int
	start  time.Time
	first  int64
	gateAt int
	gate   <-chan struct{}
	nvideo int
}

func (p *pacedTS) Read(b []byte) (int, error) {
	if p.pos >= len(p.ts) {
		return 0, io.EOF
	}
	pkt := p.ts[p.pos : p.pos+188]
	if pid, pts, ok := tstest.PESStart(pkt); ok && pid == p.video {
		if p.nvideo == p.gateAt && p.gate != nil {
			select {
			case <-p.gate:
			case <-p.ctx.Done():
				return 0, p.ctx.Err()
			}
			p.start, p.first = time.Now(), pts
		}
		if p.start.IsZero() {
			p.start, p.first = time.Now(), pts
		}
		due := p.start.Add(time.Duration(pts-p.first) * time.Second / 90000)
		if d := time.Until(due); d > 0 {
			tm := time.NewTimer(d)
			select {
			case <-tm.C:
			case <-p.ctx.Done():
				tm.Stop()
				return 0, p.ctx.Err()
			}
		}
		p.nvideo++
	}
	n := copy(b, pkt)
	p.pos += 188
	return n, nil
}

// eventRace is how much earlier than its frame an event may be read.
const eventRace = 10 * time.Millisecond

// sseEvent is one event of a WHEP event stream, with its arrival time.
type sseEvent struct {
	name, data string
	at         time.Time
}

// TestSCTE35CuesReachViewer: SCTE-35 cues written into an MPEG-TS (a
// splice_insert and a time_signal, each a second ahead of its splice time)
// go through the ingest, the bus and a whep-node to a pion viewer's event
// stream as scte35 events (the section in base64, as the draft specifies),
// each after the video frame of its PTS has arrived and before the video
// 100 ms later; a stream that asked only for viewercount gets none.
func TestSCTE35CuesReachViewer(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), func(c *config.WHEP) { c.Start = "live" })

	base := tstest.Read(t, "av.ts") // 30 fps, a keyframe every 30 frames
	pts := tstest.VideoPTS(t, base)
	insert := tstest.SpliceInsert(77, pts[90], 0, 30*90000)
	signal := tstest.TimeSignal(pts[150])
	ts := tstest.SCTE35(t, base, []tstest.CueAt{
		{Before: pts[60], Section: insert},
		{Before: pts[120], Section: signal},
	})

	pubs, err := ingest.NewPublications(ingest.Config{
		NewPublisher: ingest.BusPublishers(connect(), bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}}),
		Logger:       whepLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	ingested := make(chan error, 1)
	ictx, icancel := context.WithCancel(ctx)
	go func() {
		_, err := pubs.Ingest(ictx, "scte", ingest.Source{Kind: "http", Body: &pacedTS{ctx: ictx, ts: ts,
			video: tstest.VideoPID(t, ts), gateAt: 2, gate: gate}})
		ingested <- err
	}()
	t.Cleanup(func() {
		icancel()
		<-ingested
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := pubs.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	})

	// The viewer: its video arrivals by RTP timestamp.
	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	var mu sync.Mutex
	var frames []uint32 // RTP timestamps of the video frames, in arrival order
	var frameAt []time.Time
	var readers sync.WaitGroup
	t.Cleanup(func() { _ = c.pc.Close(); readers.Wait() })
	piontest.ReadRTP(c.pc, &readers, func(tr *webrtc.TrackRemote, p *rtp.Packet, at time.Time) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo && p.Marker {
			mu.Lock()
			frames, frameAt = append(frames, p.Timestamp), append(frameAt, at)
			mu.Unlock()
		}
	})
	// Frame 0 is published (wait for it on the bus: an ingest that held
	// video for audio the gate keeps back would publish it later), the
	// rest waits for the gate.
	key := make(chan struct{})
	var once sync.Once
	sub, err := bus.Subscribe(ctx, connect(), "scte", bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if m.IsFrame() && m.Frame.Key {
			once.Do(func() { close(key) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-key:
	case <-ctx.Done():
		t.Fatal("frame 0 never reached the bus")
	}
	sub.Close()
	resp, _ := whepPlay(t, ctx, url, "scte", c)
	location := resp.Header.Get("Location")
	cues := openEventStream(t, ctx, url, location, `["scte35"]`)
	others := openEventStream(t, ctx, url, location, `["viewercount"]`)
	whepWait(t, ctx, "the session started", func() bool {
		_, body := whepDo(t, ctx, http.MethodGet, url+"/sessions", nil, "")
		return strings.Contains(body, `"state": "connected"`)
	})
	// The viewer starts at the next keyframe: frame 30.
	close(gate)

	var got []sseEvent
	for len(got) < 2 {
		select {
		case e := <-cues:
			if e.name == "scte35" {
				got = append(got, e)
			}
		case <-ctx.Done():
			t.Fatalf("%d scte35 events, want 2", len(got))
		}
	}
	// The viewer starts at frame 30: its RTP timestamps are the PTS plus
	// off. Wait for the video 100 ms after the last cue.
	var off uint32
	whepWait(t, ctx, "the video after the last cue", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(frames) == 0 {
			return false
		}
		off = frames[0] - uint32(pts[30])
		return frames[len(frames)-1]-off >= uint32(pts[150]+9000)
	})
	mu.Lock()
	arrival := func(p int64) (time.Time, bool) {
		for i, ts := range frames {
			if ts == uint32(p)+off {
				return frameAt[i], true
			}
		}
		return time.Time{}, false
	}
	wants := []struct {
		pts     int64
		command string
		id      uint32
		oon     bool
		dur     float64
		sec     []byte
	}{
		{pts[90], "splice_insert", 77, true, 30, insert},
		{pts[150], "time_signal", 0, false, 0, signal},
	}
	for i, w := range wants {
		// The draft's data: the section in base64, which says when it
		// applies.
		sec, err := base64.StdEncoding.DecodeString(got[i].data)
		if err != nil || string(sec) != string(w.sec) {
			t.Fatalf("event %d: %q (%v), want the section %x", i, got[i].data, err, w.sec)
		}
		si, err := tsframes.ParseSpliceInfo(sec)
		if err != nil || si.SpliceTime != w.pts || si.Command.String() != w.command || si.EventID != w.id ||
			si.OutOfNetwork != w.oon || float64(si.Duration)/90000 != w.dur {
			t.Errorf("event %d: %+v (%v)", i, si, err)
		}
		// The event is sent right after the frame: the two race to the
		// client (SRTP and RTP reading against one HTTP chunk), so it may
		// be read a little before the frame, never before the frame
		// before.
		at, ok := arrival(w.pts)
		before, ok2 := arrival(w.pts - 3000)
		if !ok || !ok2 || got[i].at.Before(before) || got[i].at.Before(at.Add(-eventRace)) {
			t.Errorf("event %d at %s, its frame (PTS %d) at %s, the frame before at %s (received: %v %v)", i,
				got[i].at.Format(time.StampMicro), w.pts, at.Format(time.StampMicro), before.Format(time.StampMicro), ok, ok2)
		}
		if later, ok := arrival(w.pts + 9000); ok && !got[i].at.Before(later) {
			t.Errorf("event %d at %s, after the frame 100 ms later (%s)", i, got[i].at.Format(time.StampMicro),
				later.Format(time.StampMicro))
		}
	}
	mu.Unlock()
	for {
		select {
		case e := <-others:
			if e.name == "scte35" {
				t.Fatalf("a stream that asked for viewercount got %s", e.data)
			}
		default:
			return
		}
	}
}

// openEventStream creates an event stream of the session at location for
// the events of body (a JSON array) and reads it until the test ends.
func openEventStream(t *testing.T, ctx context.Context, url, location, body string) <-chan sseEvent {
	t.Helper()
	resp, _ := whepDo(t, ctx, http.MethodPost, url+location+"/events", http.Header{"Content-Type": {"application/json"}}, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST events = %d", resp.StatusCode)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+resp.Header.Get("Location"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET events = %d", r.StatusCode)
	}
	out := make(chan sseEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				select {
				case out <- sseEvent{name: name, data: strings.TrimPrefix(line, "data: "), at: time.Now()}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		r.Body.Close()
		<-done
	})
	return out
}
