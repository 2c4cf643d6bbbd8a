package whep

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// fragmentOf returns the trickle fragment of an SDP: its credentials and the
// candidates of its first section.
func fragmentOf(t *testing.T, desc string) (*sdpfrag.Fragment, string) {
	t.Helper()
	sd, err := parseSDP(desc)
	if err != nil {
		t.Fatal(err)
	}
	ufrag, pwd := iceCredentials(sd)
	md := sd.MediaDescriptions[0]
	mid, _ := md.Attribute("mid")
	m := sdpfrag.Media{Kind: md.MediaName.Media, Port: 9, Proto: "RTP/AVP", Formats: []string{"0"}, MID: mid, EndOfCandidates: true}
	for _, a := range md.Attributes {
		if a.Key == "candidate" {
			c, err := sdpfrag.ParseCandidate(a.Value)
			if err != nil {
				t.Fatal(err)
			}
			m.Candidates = append(m.Candidates, c)
		}
	}
	f := &sdpfrag.Fragment{ICEUfrag: ufrag, ICEPwd: pwd, Media: []sdpfrag.Media{m}}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return f, string(b)
}

// clientRestart makes the client offer an ICE restart and returns its
// fragment (fragmentOf), once the client has gathered its candidates.
func clientRestart(t *testing.T, ctx context.Context, c *testClient) (*sdpfrag.Fragment, string) {
	t.Helper()
	offer, err := c.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("restart offer: gathering did not complete")
	}
	return fragmentOf(t, c.pc.LocalDescription().SDP)
}

// applyRestartAnswer applies the server's restart fragment to the client:
// its current answer with the new credentials and candidates.
func applyRestartAnswer(t *testing.T, c *testClient, frag *sdpfrag.Fragment) {
	t.Helper()
	sd, err := parseSDP(c.pc.RemoteDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	sd.Attributes = replaceICE(sd.Attributes, frag.ICEUfrag, frag.ICEPwd, false)
	for _, md := range sd.MediaDescriptions {
		md.Attributes = replaceICE(md.Attributes, frag.ICEUfrag, frag.ICEPwd, true)
	}
	first := sd.MediaDescriptions[0]
	for _, cand := range frag.Media[0].Candidates {
		first.Attributes = append(first.Attributes, sdp.NewAttribute("candidate", strings.TrimPrefix(cand.String(), "candidate:")))
	}
	b, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c.setAnswer(t, string(b))
}

func TestTrickleAndICERestart(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	location, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
	c.waitTrack(t, ctx)
	c.waitPackets(t, ctx, 10)
	oldServer, _ := fragmentOf(t, c.pc.RemoteDescription().SDP)

	// Trickle with the current credentials: 204, nothing changes.
	_, trickle := fragmentOf(t, c.pc.LocalDescription().SDP)
	r, body := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag), trickle)
	if r.StatusCode != http.StatusNoContent || body != "" || r.Header.Get("ETag") != "" {
		t.Fatalf("trickle = %d %q ETag %q", r.StatusCode, body, r.Header.Get("ETag"))
	}

	// Refused restarts (stale ETag, no If-Match) leave the ICE session as
	// it was: media goes on and the ETag stays.
	fake := trickleFrag("wxyz", "zyxwvutsrqponmlkjihgfedc", "video", "0")
	for _, h := range []http.Header{
		hdr("Content-Type", sdpfrag.MediaType, "If-Match", `"0123456789abcdef"`),
		hdr("Content-Type", sdpfrag.MediaType),
	} {
		r, body = ts.do(t, ctx, http.MethodPatch, location, h, fake)
		if r.StatusCode != http.StatusPreconditionFailed && r.StatusCode != http.StatusPreconditionRequired {
			t.Fatalf("refused restart = %d %q", r.StatusCode, body)
		}
	}
	c.waitPackets(t, ctx, 5)
	if r, _ := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag), trickle); r.StatusCode != 204 {
		t.Fatalf("trickle after refused restarts = %d", r.StatusCode)
	}

	// The client restarts ICE.
	newClient, restart := clientRestart(t, ctx, c)

	// The restart: 200, the server's new credentials and candidates, a new
	// ETag.
	r, body = ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag), restart)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("restart = %d %q", r.StatusCode, body)
	}
	if ct := r.Header.Get("Content-Type"); ct != sdpfrag.MediaType {
		t.Fatalf("restart Content-Type = %q", ct)
	}
	newETag := r.Header.Get("ETag")
	if !reETag.MatchString(newETag) || newETag == etag {
		t.Fatalf("restart ETag = %q (old %q)", newETag, etag)
	}
	answer, err := sdpfrag.Parse([]byte(body))
	if err != nil {
		t.Fatalf("restart answer %q: %v", body, err)
	}
	if answer.ICEUfrag == "" || answer.ICEUfrag == oldServer.ICEUfrag || answer.ICEPwd == oldServer.ICEPwd {
		t.Fatalf("restart answer credentials %q/%q, old %q/%q", answer.ICEUfrag, answer.ICEPwd, oldServer.ICEUfrag, oldServer.ICEPwd)
	}
	if len(answer.Media) != 1 || answer.Media[0].MID != "0" || len(answer.Media[0].Candidates) == 0 || !answer.Media[0].EndOfCandidates {
		t.Fatalf("restart answer media %+v", answer.Media)
	}
	for _, cand := range answer.Media[0].Candidates {
		if cand.Address != "127.0.0.1" || cand.Type != "host" {
			t.Fatalf("restart candidate %s", cand.String())
		}
	}
	applyRestartAnswer(t, c, answer)
	c.waitPackets(t, ctx, 10)
	ss := ts.srv.sessions.get("cam", strings.TrimPrefix(location, "/whep/cam/"))
	if ss == nil {
		t.Fatal("session gone after restart")
	}
	ss.mu.Lock()
	ru := ss.remoteUfrag
	ss.mu.Unlock()
	if ru != newClient.ICEUfrag {
		t.Fatalf("server's remote ufrag = %q, want %q", ru, newClient.ICEUfrag)
	}

	// The old ETag is stale now; the new one works.
	_, trickle = fragmentOf(t, c.pc.LocalDescription().SDP)
	if r, _ := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", etag), trickle); r.StatusCode != 412 {
		t.Fatalf("trickle with old ETag = %d", r.StatusCode)
	}
	if r, _ := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType, "If-Match", newETag), trickle); r.StatusCode != 204 {
		t.Fatalf("trickle with new ETag = %d", r.StatusCode)
	}
	// Restarting again with the same credentials is a trickle now.
	if r, _ := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType), restart); r.StatusCode != 204 {
		t.Fatalf("repeated restart fragment = %d", r.StatusCode)
	}
}

// TestTrickleUnknownMid trickles a player's candidates in a fragment whose
// a=mid is "null" (the medooze client in Firefox), unknown or missing: the
// session has one transport, the credentials match, so the server adds
// them (before the player has the answer, so they cannot be learned as
// peer-reflexive) and the session plays.
func TestTrickleUnknownMid(t *testing.T) {
	for _, mid := range []string{"null", "7", ""} {
		t.Run("mid="+mid, func(t *testing.T) {
			ctx := t.Context()
			ts := newTestServer(t, nil)
			ts.catalog.set(liveEntry("cam", trackH264))
			c := newTestClient(t, webrtc.RTPCodecTypeVideo)
			offer := c.offer(t)
			var lines []string
			for _, l := range strings.SplitAfter(offer, "\r\n") {
				if !strings.HasPrefix(l, "a=candidate:") && !strings.HasPrefix(l, "a=end-of-candidates") {
					lines = append(lines, l)
				}
			}
			resp, body := ts.post(t, ctx, "cam", strings.Join(lines, ""), nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST = %d %q", resp.StatusCode, body)
			}
			f, _ := fragmentOf(t, offer)
			f.Media[0].MID = mid
			frag, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			location := resp.Header.Get("Location")
			if r, b := ts.do(t, ctx, http.MethodPatch, location, hdr("Content-Type", sdpfrag.MediaType), string(frag)); r.StatusCode != http.StatusNoContent {
				t.Fatalf("PATCH with a=mid:%s = %d %q", mid, r.StatusCode, b)
			}
			ss := ts.srv.sessions.get("cam", strings.TrimPrefix(location, "/whep/cam/"))
			if ss == nil {
				t.Fatal("no session")
			}
			want := 0 // the RTP component's host candidates (rtcp-mux: component 2 is not used)
			for _, cand := range f.Media[0].Candidates {
				if cand.Component == 1 && cand.Type == "host" {
					want++
				}
			}
			if want == 0 {
				t.Fatalf("no host candidate trickled: %s", frag)
			}
			// pion's ICE agent adds a remote candidate in its own goroutine,
			// after AddICECandidate returned.
			host := 0
			waitFor(t, ctx, "the trickled host candidates on the server", func() bool {
				host = 0
				for _, st := range ss.pc.GetStats() {
					if cs, ok := st.(webrtc.ICECandidateStats); ok && cs.Type == webrtc.StatsTypeRemoteCandidate &&
						cs.CandidateType == webrtc.ICECandidateTypeHost {
						host++
					}
				}
				return host >= want
			})
			if host != want {
				t.Fatalf("server has %d host remote candidates, want the %d trickled: %s", host, want, frag)
			}
			c.setAnswer(t, body)
			c.waitConnected(t, ctx)
			c.waitPackets(t, ctx, 5)
		})
	}
}
