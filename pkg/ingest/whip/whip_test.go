package whip

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 20 * time.Second

// loopback is the SettingEngine of the server side: UDP over IPv4 on
// 127.0.0.1, no mDNS.
func loopback() *webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return &se
}

// testServer is a Handler publishing into a Recorder, served on loopback.
type testServer struct {
	h   *Handler
	rec *ingesttest.Recorder
	url string
}

func newTestServer(t *testing.T, tune func(*Config)) *testServer {
	t.Helper()
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	cfg := Config{SettingEngine: loopback()}
	if tune != nil {
		tune(&cfg)
	}
	h := NewHandler(pubs, cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})
	return &testServer{h: h, rec: rec, url: srv.URL}
}

// request sends a request and returns its status, headers and body.
func request(t *testing.T, method, url, contentType, token string, body []byte, hdr ...string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// publisher is a pion WHIP client with an H.264 and an Opus track.
type publisher struct {
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	connected    chan struct{}
}

func newPublisher(t *testing.T) *publisher {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptorRegistry{}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(*loopback()), webrtc.WithInterceptorRegistry(ir.defaults(t, m)))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{pc: pc, connected: make(chan struct{})}
	t.Cleanup(func() { _ = pc.Close() })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(p.connected)
		}
	})
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
		ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "whip")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whip")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.video, p.audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// publish posts the publisher's offer to url and applies the answer; it
// returns the resource's Location.
func (p *publisher) publish(t *testing.T, url, token string) string {
	t.Helper()
	offer := piontest.Offer(t, p.pc)
	resp, body := request(t, http.MethodPost, url, "application/sdp", token, []byte(offer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("Content-Type %q", ct)
	}
	if resp.Header.Get("ETag") == "" {
		t.Fatal("no ETag")
	}
	piontest.Answer(t, p.pc, body)
	select {
	case <-p.connected:
	case <-time.After(testTimeout):
		t.Fatal("the publisher did not connect")
	}
	return resp.Header.Get("Location")
}

// send writes frames (an H.264 and Opus fixture's, in order) paced at
// speed times real time; each sample lasts until the next of its kind.
func (p *publisher) send(t *testing.T, frames []tsframes.Frame, speed int) {
	t.Helper()
	next := func(i int) int64 {
		for j := i + 1; j < len(frames); j++ {
			if frames[j].Kind == frames[i].Kind {
				return frames[j].PTS - frames[i].PTS
			}
		}
		if frames[i].Kind == tsframes.KindAudio {
			return frames[i].Duration
		}
		return 3000
	}
	start := time.Now()
	first := frames[0].PTS
	for i, f := range frames {
		due := start.Add(time.Duration((f.PTS-first)*int64(time.Second)/90000) / time.Duration(speed))
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the source, not waiting for an event
		}
		// Rounded up: pion truncates the duration's ticks.
		s := media.Sample{Data: f.Data, Duration: time.Duration((next(i)*int64(time.Second) + 89999) / 90000)}
		tr := p.video
		if f.Kind == tsframes.KindAudio {
			tr = p.audio
		}
		if err := tr.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
}

// steps returns the PTS differences of consecutive frames.
func steps(frames []tsframes.Frame) []int64 {
	out := make([]int64, 0, len(frames))
	for i := 1; i < len(frames); i++ {
		out = append(out, frames[i].PTS-frames[i-1].PTS)
	}
	return out
}

func kind(frames []tsframes.Frame, k tsframes.Kind) []tsframes.Frame {
	var out []tsframes.Frame
	for _, f := range frames {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func TestPublishesH264AndOpus(t *testing.T) {
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	s := newTestServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	p := newPublisher(t)
	loc := p.publish(t, s.url+"/whip/cam1", "")
	if !strings.HasPrefix(loc, "/whip/cam1/") {
		t.Fatalf("Location %q", loc)
	}
	p.send(t, ref.Frames, 1)
	pub := s.rec.Opened(t, testTimeout)
	pub.WaitFrames(t, len(ref.Frames), testTimeout)

	resp, body := request(t, http.MethodDelete, s.url+loc, "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	pub.WaitEnded(t, testTimeout)
	if resp, _ := request(t, http.MethodDelete, s.url+loc, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", resp.StatusCode)
	}

	got := pub.Frames()
	anns := pub.Announcements()
	if len(anns) == 0 || len(anns[0].Tracks) != 2 || anns[0].Tracks[0].Codec != tsframes.CodecH264 || anns[0].Tracks[1].Codec != tsframes.CodecOpus {
		t.Fatalf("announcements %+v", anns)
	}
	wantV, haveV := kind(ref.Frames, tsframes.KindVideo), kind(got, tsframes.KindVideo)
	if len(haveV) != len(wantV) {
		t.Fatalf("video: %d frames published, want %d", len(haveV), len(wantV))
	}
	for i := range wantV {
		if !bytes.Equal(haveV[i].Data, wantV[i].Data) || haveV[i].Key != wantV[i].Key {
			t.Fatalf("video frame %d: key=%v %d bytes, want key=%v %d bytes", i, haveV[i].Key, len(haveV[i].Data), wantV[i].Key, len(wantV[i].Data))
		}
	}
	if ws, hs := steps(wantV), steps(haveV); !equalInts(ws, hs) {
		t.Fatalf("video PTS steps %v, want %v", hs, ws)
	}
	checkAudio(t, kind(ref.Frames, tsframes.KindAudio), kind(got, tsframes.KindAudio))
	// After the sender reports, audio sits where it sits in the source
	// relative to video, within 20 ms: the publisher's pacing on a busy
	// machine (aligned by arrival, audio was 47 ms late in a run: its
	// track's reader starts later).
	wantA, haveA := kind(ref.Frames, tsframes.KindAudio), kind(got, tsframes.KindAudio)
	wantSync := wantA[len(wantA)-1].PTS - wantV[len(wantV)-1].PTS
	haveSync := haveA[len(haveA)-1].PTS - haveV[len(haveV)-1].PTS
	if d := haveSync - wantSync; d < -1800 || d > 1800 {
		t.Fatalf("audio to video: %d ticks, source %d", haveSync, wantSync)
	}
	if n := s.h.Publishers(); n != 0 {
		t.Fatalf("%d resources left", n)
	}
}

var _ = ingest.ErrLive

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkAudio checks that the Opus packets published are the source's, in
// order, with the source's PTS steps and durations, except at one point:
// where the sender reports realigned audio onto video (a step that
// differs, and the packets it overlapped dropped when it went back).
func checkAudio(t *testing.T, want, have []tsframes.Frame) {
	t.Helper()
	dropped := len(want) - len(have)
	if dropped < 0 || dropped > 10 {
		t.Fatalf("audio: %d packets published, want %d (up to 10 fewer)", len(have), len(want))
	}
	ws, hs := steps(want), steps(have)
	k := len(hs) // the step of the realignment
	for i := range hs {
		if hs[i] != ws[i] {
			k = i
			break
		}
	}
	if k == len(hs) && dropped != 0 {
		t.Fatalf("audio: %d packets dropped without a realignment", dropped)
	}
	for i := range have {
		j := i
		if i > k {
			j = i + dropped
		}
		if !bytes.Equal(have[i].Data, want[j].Data) || have[i].Duration != want[j].Duration {
			t.Fatalf("audio packet %d: %d bytes, duration %d; want source packet %d: %d bytes, duration %d",
				i, len(have[i].Data), have[i].Duration, j, len(want[j].Data), want[j].Duration)
		}
		if i > k+1 && have[i].PTS-have[i-1].PTS != want[j].PTS-want[j-1].PTS {
			t.Fatalf("audio packet %d: PTS step %d, want %d", i, have[i].PTS-have[i-1].PTS, want[j].PTS-want[j-1].PTS)
		}
	}
}
