//go:build external

package tests

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Debian's Firefox ESR has no H.264 (Firefox fetches OpenH264 at run time,
// which a test machine cannot): these tests play the demo stream's Opus
// audio; the video is checked in Chromium.

// firefoxAudio is what the tests read of an inbound-rtp audio report.
type firefoxAudio struct {
	PacketsReceived      float64 `json:"packetsReceived"`
	PacketsLost          float64 `json:"packetsLost"`
	TotalSamplesReceived float64 `json:"totalSamplesReceived"`
	ConcealedSamples     float64 `json:"concealedSamples"`
	TotalSamplesDuration float64 `json:"totalSamplesDuration"`
	Codec                string  `json:"codec"`
}

// checkAudioFlows samples the page's audio statistics (stats, an expression
// that resolves to a firefoxAudio or null), waits until at least 100 more
// packets (2 s of 20 ms Opus frames) have arrived, samples again, and checks
// that the packets were decoded: samples received grow by about the packets'
// duration, and at most a tenth of them were concealed.
func checkAudioFlows(ctx context.Context, t *testing.T, f *firefox, stats string) {
	t.Helper()
	// The page polls stats into window.__audio: no sleep of the test's.
	poll := func(cond string) string {
		return `(() => { (` + stats + `).then(a => { window.__audio = a; }); return !!window.__audio && ` + cond + `; })()`
	}
	if _, err := evalJSON[bool](ctx, f, `(window.__audio = null, true)`); err != nil {
		t.Fatal(err)
	}
	if err := waitFirefoxJS(ctx, f, 20*time.Second, poll(`window.__audio.packetsReceived > 0`)); err != nil {
		t.Fatal(err)
	}
	a1, err := evalJSON[firefoxAudio](ctx, f, stats)
	if err != nil {
		t.Fatal(err)
	}
	more := strconv.FormatFloat(a1.PacketsReceived+100, 'f', 0, 64)
	if err := waitFirefoxJS(ctx, f, 15*time.Second, poll(`window.__audio.packetsReceived >= `+more)); err != nil {
		t.Fatal(err)
	}
	a2, err := evalJSON[firefoxAudio](ctx, f, stats)
	if err != nil {
		t.Fatal(err)
	}
	packets := a2.PacketsReceived - a1.PacketsReceived
	samples := a2.TotalSamplesReceived - a1.TotalSamplesReceived
	concealed := a2.ConcealedSamples - a1.ConcealedSamples
	t.Logf("audio (%s): %.0f packets, %.0f lost in all, %.0f samples received of which %.0f concealed, %.2f s of samples",
		a2.Codec, packets, a2.PacketsLost, samples, concealed, a2.TotalSamplesDuration)
	if packets < 100 {
		t.Errorf("%.0f audio packets in the window, want at least 100", packets)
	}
	// 20 ms per packet; the decoder's output clock runs apart from the
	// arrivals, so allow half of it.
	if perPacket := samples / packets; perPacket < 0.5*0.020*48000 {
		t.Errorf("%.0f samples received for %.0f packets (%.0f each), want about 960 each at 48 kHz: the audio is not decoded",
			samples, packets, perPacket)
	}
	if concealed > 0.1*samples {
		t.Errorf("%.0f of %.0f samples concealed, want at most a tenth", concealed, samples)
	}
	if a2.PacketsLost != 0 {
		t.Errorf("%.0f audio packets lost on loopback, want 0", a2.PacketsLost)
	}
}

func TestFirefoxPlayerPlaysAudio(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	f := startFirefox(t)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()

	if err := f.navigate(ctx, stack.url+"/play/demo"); err != nil {
		t.Fatal(err)
	}
	if err := waitFirefoxJS(ctx, f, 30*time.Second, `document.body.dataset.state === 'playing'`); err != nil {
		st, _ := evalJSON[map[string]any](ctx, f, `({state: whepcast.state, message: whepcast.message, attempts: whepcast.attempts})`)
		t.Fatalf("%v; player: %v", err, st)
	}
	if n := len(stack.whep.Sessions()); n != 1 {
		t.Errorf("%d WHEP sessions, want 1", n)
	}
	checkAudioFlows(ctx, t, f, `whepcast.refreshStats().then(s => s.audio)`)
	st, err := evalJSON[playStats](ctx, f, `whepcast.refreshStats()`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Audio == nil || !strings.EqualFold(strings.TrimPrefix(st.Audio.Codec, "audio/"), "opus") {
		t.Errorf("player stats %+v: want Opus audio", st)
	}
	if st.Video != nil && st.Video.FramesDecoded > 0 {
		t.Errorf("Firefox decoded %.0f video frames without H.264", st.Video.FramesDecoded)
	}

	// Leaving the page DELETEs the session.
	if err := f.navigate(ctx, "about:blank"); err != nil {
		t.Fatal(err)
	}
	waitNoSessions(ctx, t, stack)
}

// thirdPartyClientPage is an independent WHEP client, standing in for a
// third-party one: it POSTs its offer before any candidate is gathered,
// trickles every candidate and the end of candidates in PATCH requests
// (If-Match the session's ETag), plays the audio in an <audio> element and
// DELETEs the session on close(). The WHEP URL is the page's ?whep=
// parameter; the server is another origin (CORS).
const thirdPartyClientPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>WHEP client</title></head>
<body><audio id="audio" autoplay></audio>
<script>
'use strict';
const whepURL = new URLSearchParams(location.search).get('whep');
const c = window.client = {state: 'new', error: '', candidates: 0, patches: [], session: null};
const pc = new RTCPeerConnection();
// Video first, as players do: this Firefox has no H.264, so the server
// rejects that section and bundles on the audio one.
pc.addTransceiver('video', {direction: 'recvonly'});
pc.addTransceiver('audio', {direction: 'recvonly'});
pc.ontrack = (ev) => {
  if (ev.track.kind !== 'audio') return;
  const audio = document.getElementById('audio');
  audio.srcObject = new MediaStream([ev.track]);
  audio.play().catch((e) => { c.error = 'play: ' + e; });
};
pc.onconnectionstatechange = () => { c.state = pc.connectionState; };
let etag = null, ufrag = null, pwd = null;
const kinds = {}; // mid -> kind, from the offer
const queued = []; // [mid, line] gathered before the 201
let chain = Promise.resolve();
// patch sends one fragment with a section per mid (RFC 8840).
function patch(entries) {
  chain = chain.then(async () => {
    const byMid = new Map();
    entries.forEach(([mid, line]) => { if (!byMid.has(mid)) byMid.set(mid, []); byMid.get(mid).push(line); });
    let body = 'a=ice-ufrag:' + ufrag + '\r\na=ice-pwd:' + pwd + '\r\n';
    byMid.forEach((lines, mid) => {
      body += 'm=' + kinds[mid] + ' 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:' + mid + '\r\n' + lines.join('');
    });
    const res = await fetch(c.session, {method: 'PATCH', body: body,
      headers: {'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag}});
    c.patches.push(res.status);
  }).catch((e) => { c.error = 'PATCH: ' + e; });
}
pc.onicecandidate = (ev) => {
  if (!ev.candidate) return; // the end of each section came as an empty candidate
  const mid = ev.candidate.sdpMid;
  let line = 'a=end-of-candidates\r\n';
  if (ev.candidate.candidate) {
    line = 'a=' + ev.candidate.candidate + '\r\n';
    c.candidates++;
  }
  if (c.session) patch([[mid, line]]); else queued.push([mid, line]);
};
c.stats = async () => {
  const report = await pc.getStats();
  let a = null, codec = '';
  report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') a = r; });
  if (!a) return null;
  report.forEach((r) => { if (r.id === a.codecId) codec = r.mimeType; });
  return {packetsReceived: a.packetsReceived, packetsLost: a.packetsLost, totalSamplesReceived: a.totalSamplesReceived,
    concealedSamples: a.concealedSamples, totalSamplesDuration: a.totalSamplesDuration, codec: codec};
};
c.close = async () => {
  const res = await fetch(c.session, {method: 'DELETE'});
  pc.close();
  return res.status;
};
(async () => {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  ufrag = /a=ice-ufrag:(\S+)/.exec(offer.sdp)[1];
  pwd = /a=ice-pwd:(\S+)/.exec(offer.sdp)[1];
  offer.sdp.split('\r\nm=').slice(1).forEach((m) => { kinds[/a=mid:(\S+)/.exec(m)[1]] = m.split(' ')[0]; });
  c.offerCandidates = (offer.sdp.match(/a=candidate:/g) || []).length;
  const res = await fetch(whepURL, {method: 'POST', body: offer.sdp, headers: {'Content-Type': 'application/sdp'}});
  if (res.status !== 201) throw new Error('POST answered ' + res.status + ': ' + await res.text());
  c.session = new URL(res.headers.get('Location'), whepURL).href;
  etag = res.headers.get('ETag');
  await pc.setRemoteDescription({type: 'answer', sdp: await res.text()});
  // One PATCH for what was gathered before the 201, as the draft asks.
  if (queued.length) patch(queued.splice(0));
})().catch((e) => { c.error = String(e); });
</script></body></html>
`

func TestFirefoxThirdPartyClientTrickles(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, thirdPartyClientPage)
	}))
	t.Cleanup(page.Close)
	f := startFirefox(t)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()

	if err := f.navigate(ctx, page.URL+"/?whep="+url.QueryEscape(stack.url+"/whep/demo")); err != nil {
		t.Fatal(err)
	}
	if err := waitFirefoxJS(ctx, f, 30*time.Second, `client.state === 'connected' || client.error !== ''`); err != nil {
		st, _ := evalJSON[map[string]any](ctx, f, `client`)
		t.Fatalf("%v; client: %v", err, st)
	}
	if e, _ := evalJSON[string](ctx, f, `client.error`); e != "" {
		t.Fatalf("the client failed: %s", e)
	}
	checkAudioFlows(ctx, t, f, `client.stats()`)

	// Every candidate went in a PATCH (the offer had none), and the node
	// answered each 204.
	type trickle struct {
		OfferCandidates int    `json:"offerCandidates"`
		Candidates      int    `json:"candidates"`
		Patches         []int  `json:"patches"`
		Error           string `json:"error"`
	}
	if err := waitFirefoxJS(ctx, f, 10*time.Second, `client.patches.length > 0`); err != nil {
		t.Fatal(err)
	}
	tr, err := evalJSON[trickle](ctx, f, `client`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trickle: %d candidates in the offer, %d gathered after it, PATCH answers %v", tr.OfferCandidates, tr.Candidates, tr.Patches)
	if tr.OfferCandidates != 0 || tr.Candidates == 0 {
		t.Errorf("%d candidates in the offer and %d trickled, want 0 and at least 1", tr.OfferCandidates, tr.Candidates)
	}
	for _, code := range tr.Patches {
		if code != http.StatusNoContent {
			t.Errorf("PATCH answered %v, want all 204", tr.Patches)
			break
		}
	}
	if tr.Error != "" {
		t.Errorf("client error: %s", tr.Error)
	}
	if got := requestsCounted(t, stack.metrics, "PATCH", "204"); got != float64(len(tr.Patches)) {
		t.Errorf("the node counted %v PATCH 204, the client %d", got, len(tr.Patches))
	}

	status, err := evalJSON[int](ctx, f, `client.close()`)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Errorf("DELETE answered %d, want 200", status)
	}
	waitNoSessions(ctx, t, stack)
}

// requestsCounted reads whepcast_whep_requests_total{method, code} from reg
// (0 when the series does not exist).
func requestsCounted(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "whepcast_whep_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// waitNoSessions waits until the stack's WHEP server has no session left.
func waitNoSessions(ctx context.Context, t *testing.T, stack *browserStack) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for len(stack.whep.Sessions()) != 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d WHEP sessions 10 s after the client left, want 0", len(stack.whep.Sessions()))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}
