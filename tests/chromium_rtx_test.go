//go:build external

package tests

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// lossyLinkClientPage plays a WHEP stream whose only path goes through a
// linkEmulator: the offer leaves without candidates and the answer's
// candidates are rewritten to the link's address (?via=host:port), as
// linkOffer and linkAnswer do for pion viewers. The WHEP URL is ?whep=.
const lossyLinkClientPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>lossy link</title></head>
<body><video id="video" muted autoplay playsinline></video>
<script>
'use strict';
const q = new URLSearchParams(location.search);
const whepURL = q.get('whep');
const via = q.get('via').split(':');
const c = window.client = {state: 'new', error: '', answer: '', session: null};
const pc = new RTCPeerConnection();
pc.addTransceiver('video', {direction: 'recvonly'});
pc.addTransceiver('audio', {direction: 'recvonly'});
pc.ontrack = (ev) => {
  if (ev.track.kind !== 'video') return;
  const v = document.getElementById('video');
  v.srcObject = new MediaStream([ev.track]);
  v.play().catch((e) => { c.error = 'play: ' + e; });
};
pc.onconnectionstatechange = () => { c.state = pc.connectionState; };
c.stats = async () => {
  const report = await pc.getStats();
  let v = null;
  report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') v = r; });
  if (!v) return null;
  return {framesDecoded: v.framesDecoded || 0, packetsReceived: v.packetsReceived || 0, packetsLost: v.packetsLost || 0,
    retransmittedPacketsReceived: v.retransmittedPacketsReceived || 0, nackCount: v.nackCount || 0,
    freezeCount: v.freezeCount || 0, rtxSsrc: v.rtxSsrc || 0};
};
c.close = async () => {
  const res = await fetch(c.session, {method: 'DELETE'});
  pc.close();
  return res.status;
};
(async () => {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const sdp = offer.sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates').join('\r\n');
  const res = await fetch(whepURL, {method: 'POST', body: sdp, headers: {'Content-Type': 'application/sdp'}});
  if (res.status !== 201) throw new Error('POST answered ' + res.status + ': ' + await res.text());
  c.session = new URL(res.headers.get('Location'), whepURL).href;
  c.answer = await res.text();
  const answer = c.answer.replace(/a=candidate:(\S+) (\d+) (\S+) (\d+) \S+ \d+ typ host/g,
    (m, f, comp, tr, prio) => 'a=candidate:' + f + ' ' + comp + ' ' + tr + ' ' + prio + ' ' + via[0] + ' ' + via[1] + ' typ host');
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
})().catch((e) => { c.error = String(e); });
</script></body></html>
`

// rtxVideoStats is what the test reads of Chromium's inbound-rtp video.
type rtxVideoStats struct {
	FramesDecoded                float64 `json:"framesDecoded"`
	PacketsReceived              float64 `json:"packetsReceived"`
	PacketsLost                  float64 `json:"packetsLost"`
	RetransmittedPacketsReceived float64 `json:"retransmittedPacketsReceived"`
	NackCount                    float64 `json:"nackCount"`
	FreezeCount                  float64 `json:"freezeCount"`
	RtxSsrc                      float64 `json:"rtxSsrc"`
}

// TestChromiumRepairsLossWithRTX plays the demo stream in Chromium through
// a link that loses 2 % of the node's datagrams: Chromium NACKs, the node
// resends on the RTX stream it negotiated, and Chromium counts the repairs
// (retransmittedPacketsReceived) while it keeps decoding frames.
func TestChromiumRepairsLossWithRTX(t *testing.T) {
	checkLeaks(t)
	stack := startBrowserStack(t)
	nodeAddr, ok := stack.whep.ICEUDPAddrs()[0].(*net.UDPAddr)
	if !ok {
		t.Fatalf("ICE address %v is not UDP", stack.whep.ICEUDPAddrs())
	}
	link := newLinkEmulator(t, nodeAddr, linkConfig{Loss: 0.02, Seed: 16})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, lossyLinkClientPage)
	}))
	t.Cleanup(page.Close)
	ctx := startChromium(t)

	target := page.URL + "/?whep=" + url.QueryEscape(stack.url+"/whep/demo") + "&via=" + link.viewerFacing().String()
	if err := chromedp.Do(ctx, chromedp.Navigate(target)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, 30*time.Second, `client.state === 'connected' || client.error !== ''`); err != nil {
		t.Fatal(err)
	}
	if e, _ := evalJS[string](ctx, `client.error`); e != "" {
		t.Fatalf("the client failed: %s", e)
	}
	answer, err := evalJS[string](ctx, `client.answer`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, " rtx/90000") || !strings.Contains(answer, "a=ssrc-group:FID ") {
		t.Errorf("the answer has no RTX:\n%s", answer)
	}

	// Frames decode, then 150 more (5 s at 30 fps) through the lossy link.
	if err := waitJS(ctx, 20*time.Second, `(client.stats().then(s => window.__v = s), window.__v && window.__v.framesDecoded > 0)`); err != nil {
		t.Fatal(err)
	}
	s1, err := evalJS[rtxVideoStats](ctx, `client.stats()`)
	if err != nil {
		t.Fatal(err)
	}
	more := s1.FramesDecoded + 150
	if err := waitJS(ctx, 30*time.Second, `(client.stats().then(s => window.__v = s), window.__v && window.__v.framesDecoded >= `+
		strconv.FormatFloat(more, 'f', 0, 64)+`)`); err != nil {
		t.Fatal(err)
	}
	s2, err := evalJS[rtxVideoStats](ctx, `client.stats()`)
	if err != nil {
		t.Fatal(err)
	}
	lc := link.counters()
	var resent uint64
	if ss := stack.whep.Sessions(); len(ss) == 1 {
		resent = ss[0].Stats.Video.Retransmits
	}
	t.Logf("link: %d of %d datagrams lost; node: %d video packets resent; chromium: %.0f NACKs, %.0f retransmitted packets received, %.0f lost, %.0f frames decoded, %.0f freezes",
		lc.DownLossDrops, lc.DownIn, resent, s2.NackCount, s2.RetransmittedPacketsReceived, s2.PacketsLost, s2.FramesDecoded, s2.FreezeCount)
	if lc.DownLossDrops == 0 {
		t.Fatal("the link lost nothing")
	}
	if s2.RetransmittedPacketsReceived <= 0 || s2.NackCount <= 0 {
		t.Errorf("retransmittedPacketsReceived %.0f, nackCount %.0f: want both above 0", s2.RetransmittedPacketsReceived, s2.NackCount)
	}
	if s2.RtxSsrc == 0 {
		t.Error("inbound-rtp video has no rtxSsrc: RTX was not negotiated")
	}
	if resent == 0 {
		t.Error("the node resent nothing")
	}
	if s2.FramesDecoded < more {
		t.Errorf("frames decoded %.0f, want at least %.0f", s2.FramesDecoded, more)
	}

	status, err := evalJS[int](ctx, `client.close()`)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Errorf("DELETE answered %d, want 200", status)
	}
}
