package whip

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 20 * time.Second

// loopback is the SettingEngine of the server side.
func loopback() *webrtc.SettingEngine {
	se := piontest.Loopback()
	return &se
}

// testServer is a Handler publishing into a Recorder, served on loopback.
type testServer struct {
	h       *Handler
	rec     *ingesttest.Recorder
	url     string
	metrics *prometheus.Registry
}

// protocolMetric returns the value of the ingest's per-protocol series
// name{protocol="whip"}.
func (s *testServer) protocolMetric(t *testing.T, name string) float64 {
	t.Helper()
	fams, err := s.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && l.GetValue() == "whip" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func newTestServer(t *testing.T, tune func(*Config)) *testServer {
	t.Helper()
	rec := ingesttest.NewRecorder()
	reg := prometheus.NewRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := ingest.NewPublications(ingest.Config{NewPublisher: rec.NewPublisher, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := pubs.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
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
	return &testServer{h: h, rec: rec, url: srv.URL, metrics: reg}
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

// publish posts p's offer to url and applies the answer; it returns the
// resource's Location.
func publish(t *testing.T, p *piontest.Publisher, url, token string) string {
	t.Helper()
	offer := piontest.Offer(t, p.PC)
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
	piontest.Answer(t, p.PC, body)
	p.WaitConnected(t, testTimeout)
	return resp.Header.Get("Location")
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
	s := newTestServer(t, nil)
	p := piontest.NewPublisher(t, nil)
	loc := publish(t, p, s.url+"/whip/cam1", "")
	if !strings.HasPrefix(loc, "/whip/cam1/") {
		t.Fatalf("Location %q", loc)
	}
	p.Send(t, ref.Frames, 1)
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
	// relative to video, within 2 ms (aligned by arrival, audio was 47 ms
	// late in a run: its track's reader starts later). The publisher's
	// reports read its media clock: with pion's wall clock they carried its
	// scheduling delays (7 ms, and up to 30 on a loaded machine).
	wantA, haveA := kind(ref.Frames, tsframes.KindAudio), kind(got, tsframes.KindAudio)
	wantSync := wantA[len(wantA)-1].PTS - wantV[len(wantV)-1].PTS
	haveSync := haveA[len(haveA)-1].PTS - haveV[len(haveV)-1].PTS
	d := haveSync - wantSync
	t.Logf("audio to video: %d ticks off the source's", d)
	if d < -180 || d > 180 {
		t.Fatalf("audio to video: %d ticks, source %d", haveSync, wantSync)
	}
	if n := s.h.Publishers(); n != 0 {
		t.Fatalf("%d resources left", n)
	}
	if n := s.protocolMetric(t, "whepcast_ingest_protocol_publications_total"); n != 1 {
		t.Fatalf("whip publications counted: %v, want 1", n)
	}
	if n := s.protocolMetric(t, "whepcast_ingest_protocol_bytes_total"); n < 200_000 {
		t.Fatalf("whip bytes counted: %v, want the RTP of av.ts (over 200,000)", n)
	}
}

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
