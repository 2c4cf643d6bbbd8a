package whepbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
)

// TestChurnStack opens and closes 12 sessions, 4 at a time, on av.ts
// through whepcast's stack: every one plays, is deleted, and the node has
// no session left.
func TestChurnStack(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	startPush(t, ctx, st.ingest+"churn", avSchedule(t))

	rep, err := Churn(ctx, ChurnConfig{
		URLs:        []string{st.whep + "churn"},
		Sessions:    12,
		Concurrency: 4,
		PIDs:        []int{os.Getpid()}, // the stack runs in this process
		Baseline:    -1,
		Logger:      testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, rep)
	if rep.Sessions != 12 || rep.Concurrency != 4 || rep.Started != 12 || rep.Opened != 12 || rep.Connected != 12 ||
		rep.Played != 12 || rep.Failed != 0 || rep.DeleteErrors != 0 || len(rep.Failures) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.TTFF.Count != 12 || rep.TTFF.Min <= 0 || rep.TTFF.Max > DefaultPlayTimeout || rep.Connect.Count != 12 ||
		rep.Connect.Min <= 0 || rep.Connect.Min > rep.TTFF.Min {
		t.Fatalf("TTFF %+v, connect %+v", rep.TTFF, rep.Connect)
	}
	if rep.Elapsed <= 0 || rep.ElapsedS != rep.Elapsed.Seconds() || rep.SessionsPerS != 12/rep.Elapsed.Seconds() {
		t.Fatalf("elapsed %v (%v s), %v sessions/s", rep.Elapsed, rep.ElapsedS, rep.SessionsPerS)
	}
	if len(rep.Servers) != 1 || rep.Servers[0].PID != os.Getpid() || rep.Servers[0].Units != 12 || rep.Servers[0].Err != "" ||
		rep.Servers[0].RSSAfter <= 0 || rep.Servers[0].RSSGrowth != rep.Servers[0].RSSAfter-rep.Servers[0].RSSBefore ||
		rep.Servers[0].CPUPerSessionMS < 0 || rep.Self.PID != os.Getpid() {
		t.Fatalf("servers %+v, self %+v", rep.Servers, rep.Self)
	}
	// A DELETE answered 200 has closed its session.
	if body := getBody(t, ctx, strings.TrimSuffix(st.whep, "/whep/")+"/sessions"); body != "[]" {
		t.Fatalf("sessions left on the node: %s", body)
	}

	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := squeezeSpaces(out.String())
	for _, want := range []string{"scenario churn", "12 at concurrency 4 in", "opened 12, connected 12, played 12, failed 0, delete errors 0", "ttff p50 "} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back ChurnReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Played != 12 || back.TTFF.Count != 12 || back.SessionsPerS != rep.SessionsPerS || len(back.Servers) != 1 ||
		back.Servers[0].PID != os.Getpid() || back.Servers[0].RSSGrowth != rep.Servers[0].RSSGrowth {
		t.Fatalf("JSON round trip: %s", b)
	}
}

// TestChurnAudioOnly: without video in the answer a session plays at its
// first RTP packet; it is held Hold before it is deleted.
func TestChurnAudioOnly(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	sched, err := NewSchedule(tstest.Read(t, "audio.ts"))
	if err != nil {
		t.Fatal(err)
	}
	startPush(t, ctx, st.ingest+"radio", sched)
	const hold = 200 * time.Millisecond
	rep, err := Churn(ctx, ChurnConfig{URLs: []string{st.whep + "radio"}, Sessions: 3, Concurrency: 2, Hold: hold, Baseline: -1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 3 || rep.Played != 3 || rep.Failed != 0 || rep.DeleteErrors != 0 || rep.TTFF.Count != 3 || rep.TTFF.Min <= 0 {
		t.Fatalf("report %+v", rep)
	}
	// Two rounds of sessions, each held once it played.
	if rep.Elapsed < 2*hold {
		t.Fatalf("elapsed %v, want at least 2 holds of %v", rep.Elapsed, hold)
	}
}

// TestChurnFailures: sessions refused or unreachable are counted, with
// their reason, and Churn still returns a report.
func TestChurnFailures(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL + "/whep/x"
	refused.Close()
	rep, err := Churn(ctx, ChurnConfig{URLs: []string{notFound.URL + "/whep/x", refusedURL}, Sessions: 4, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Concurrency != 4 || rep.Started != 4 || rep.Opened != 0 || rep.Connected != 0 || rep.Played != 0 || rep.Failed != 4 ||
		rep.DeleteErrors != 0 || rep.TTFF.Count != 0 || len(rep.Failures) != 2 || len(rep.Servers) != 0 {
		t.Fatalf("report %+v", rep)
	}
	for msg, n := range rep.Failures {
		if n != 2 || !(strings.Contains(msg, "POST status 404") || strings.Contains(msg, "connection refused")) {
			t.Errorf("failure %q × %d", msg, n)
		}
	}
}

// TestChurnNoKeyframe: a session that connects but receives no media fails
// at PlayTimeout, and is deleted.
func TestChurnNoKeyframe(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	srv := newSilentWHEP(t, nil)
	rep, err := Churn(ctx, ChurnConfig{URLs: []string{srv.url}, Sessions: 2, Concurrency: 2, PlayTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 2 || rep.Opened != 2 || rep.Connected != 2 || rep.Played != 0 || rep.Failed != 2 || rep.DeleteErrors != 0 ||
		rep.Connect.Count != 2 || rep.TTFF.Count != 0 || rep.Failures["no keyframe within 1.5s"] != 2 {
		t.Fatalf("report %+v", rep)
	}
	if posts, deletes := srv.counts(); posts != 2 || deletes != 2 {
		t.Fatalf("server saw %d POSTs and %d DELETEs, want 2 and 2", posts, deletes)
	}
}

// TestChurnCanceled: when ctx ends, the sessions under way fail and are
// deleted, no more start, and Churn returns ctx's error.
func TestChurnCanceled(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	// Canceled once both sessions are connected on the server's side: the
	// client has both answers (a POST canceled in flight could leave a
	// session the client cannot know of).
	srv := newSilentWHEP(t, func(n int) {
		if n == 2 {
			cancel()
		}
	})
	rep, err := Churn(ctx, ChurnConfig{URLs: []string{srv.url}, Sessions: 100, Concurrency: 2, PlayTimeout: 30 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Churn: %v, want context.Canceled", err)
	}
	if rep.Started != 2 || rep.Played != 0 || rep.Failed != 2 || rep.DeleteErrors != 0 {
		t.Fatalf("report %+v", rep)
	}
	posts, deletes := srv.counts()
	if posts != 2 || deletes != posts {
		t.Fatalf("server saw %d POSTs and %d DELETEs, want 2 and 2", posts, deletes)
	}
}

func TestChurnConfigErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	u := []string{"http://127.0.0.1:1/whep/x"}
	cases := map[string]ChurnConfig{
		"no URL":           {Sessions: 1},
		"bad URL":          {URLs: []string{"https://127.0.0.1:1/whep/x"}, Sessions: 1},
		"no sessions":      {URLs: u},
		"too many":         {URLs: u, Sessions: MaxChurnSessions + 1},
		"bad concurrency":  {URLs: u, Sessions: 1, Concurrency: -1},
		"huge concurrency": {URLs: u, Sessions: 1, Concurrency: MaxChurnConcurrency + 1},
		"bad play timeout": {URLs: u, Sessions: 1, PlayTimeout: -time.Second},
		"bad hold":         {URLs: u, Sessions: 1, Hold: -time.Second},
		"bad pid":          {URLs: u, Sessions: 1, PIDs: []int{1 << 23}},
	}
	for name, cfg := range cases {
		if _, err := Churn(ctx, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Churn %s: %v, want ErrConfig", name, err)
		}
	}
}

func TestChurnReportText(t *testing.T) {
	rep := ChurnReport{
		URLs: []string{"http://a/whep/x", "http://b/whep/x"}, Sessions: 10, Concurrency: 2, Started: 10, Opened: 9,
		Connected: 9, Played: 8, Failed: 2, Failures: map[string]int{"no keyframe within 1s": 1, "POST status 503: busy": 1},
		DeleteErrors: 1, ElapsedS: 2, SessionsPerS: 5,
		Servers: []ChurnProc{churnProc(ProcReport{PID: 7, Label: "pid 7", WindowSeconds: 2, CPUSeconds: 1, Cores: 0.5,
			Units: 10, CorePerUnit: 0.05, RSSBefore: 100 << 20, RSSAfter: 105 << 20})},
		Self: ChurnProc{ProcReport: ProcReport{Label: "whep-bench", Err: "gone"}},
	}
	if p := rep.Servers[0]; p.CPUPerSessionMS != 100 || p.RSSGrowth != 5<<20 {
		t.Fatalf("churnProc: %+v", p)
	}
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"urls http://a/whep/x http://b/whep/x\n",
		"sessions 10 at concurrency 2 in 2.0 s: 5.0 sessions/s\n",
		"outcome opened 9, connected 9, played 8, failed 2, delete errors 1\n",
		"failure 1× POST status 503: busy\nfailure 1× no keyframe within 1s\n",
		"pid 7 0.500 cores (1.00 s CPU in 2.0 s; baseline 0.000 cores), 100.00 ms CPU per session\n",
		"pid 7 RSS 100.0 → 105.0 MiB (+5.0 %)\n",
		"whep-bench error: gone\n",
	} {
		if !strings.Contains(squeezeSpaces(out.String()), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// squeezeSpaces replaces the runs of spaces of a table with one space.
func squeezeSpaces(s string) string {
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ")
}

func getBody(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return strings.TrimSpace(string(b))
}

// silentWHEP is a WHEP server whose sessions connect (ICE, DTLS) and send
// no media: an H.264 track is negotiated and never written.
type silentWHEP struct {
	url string
	api *webrtc.API
	// onConnected, when set, is called with the number of sessions
	// connected so far at each connection.
	onConnected func(n int)

	mu        sync.Mutex
	posts     int
	connected int
	deletes   int
	sessions  map[string]*webrtc.PeerConnection
}

func newSilentWHEP(t *testing.T, onConnected func(n int)) *silentWHEP {
	t.Helper()
	api := piontest.API(t, func(se *webrtc.SettingEngine) {
		se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	})
	s := &silentWHEP{api: api,
		onConnected: onConnected, sessions: map[string]*webrtc.PeerConnection{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	s.url = hs.URL + "/whep/x"
	t.Cleanup(func() {
		hs.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, pc := range s.sessions {
			_ = pc.Close()
		}
	})
	return s
}

func (s *silentWHEP) counts() (posts, deletes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, s.deletes
}

func (s *silentWHEP) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/whep/x":
		s.post(w, r)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/whep/x/"):
		s.mu.Lock()
		pc := s.sessions[r.URL.Path]
		delete(s.sessions, r.URL.Path)
		if pc != nil {
			s.deletes++
		}
		s.mu.Unlock()
		if pc == nil {
			http.NotFound(w, r)
			return
		}
		_ = pc.Close()
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

func (s *silentWHEP) post(w http.ResponseWriter, r *http.Request) {
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st != webrtc.PeerConnectionStateConnected || s.onConnected == nil {
			return
		}
		once.Do(func() {
			s.mu.Lock()
			s.connected++
			n := s.connected
			s.mu.Unlock()
			s.onConnected(n)
		})
	})
	answer, err := silentAnswer(r.Context(), pc, string(offer))
	if err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.posts++
	n := s.posts
	loc := fmt.Sprintf("/whep/x/%d", n)
	s.sessions[loc] = pc
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// silentAnswer answers offer with a send-only H.264 track, candidates
// gathered.
func silentAnswer(ctx context.Context, pc *webrtc.PeerConnection, offer string) (string, error) {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "silent")
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	if _, err := pc.AddTrack(track); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}
