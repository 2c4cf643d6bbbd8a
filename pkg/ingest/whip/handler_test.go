package whip

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
)

// offerSDP is a handwritten offer; sections are appended to it.
const offerSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

const unsupportedSections = "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=0;profile-level-id=42e01f\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"

const simulcastSections = "m=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n" +
	"a=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rid:h send\r\na=rid:l send\r\na=simulcast:send h;l\r\n"

func TestRefusesBadRequests(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Tokens = []string{"s3cret"} })
	cases := []struct {
		name, method, path, contentType, token, body string
		status                                       int
		says                                         string
	}{
		{"no token", "POST", "/whip/cam1", "application/sdp", "", offerSDP + unsupportedSections, 401, "token"},
		{"wrong token", "POST", "/whip/cam1", "application/sdp", "nope", offerSDP + unsupportedSections, 401, "token"},
		{"no offer", "POST", "/whip/cam1", "application/sdp", "s3cret", "", 400, "empty body"},
		{"wrong content type", "POST", "/whip/cam1", "text/plain", "s3cret", offerSDP, 415, "Content-Type"},
		{"not SDP", "POST", "/whip/cam1", "application/sdp", "s3cret", "hello", 400, "bad SDP offer"},
		{"no media", "POST", "/whip/cam1", "application/sdp", "s3cret", offerSDP, 400, "no audio or video section"},
		{"unsupported codecs", "POST", "/whip/cam1", "application/sdp", "s3cret", offerSDP + unsupportedSections, 415,
			"offered: video: VP8, H264 packetization-mode=0; audio: PCMU"},
		{"simulcast", "POST", "/whip/cam1", "application/sdp", "s3cret", offerSDP + simulcastSections, 400, "simulcast not supported: send one layer"},
		{"invalid stream name", "POST", "/whip/a*b", "application/sdp", "s3cret", offerSDP, 400, "invalid"},
		{"no stream", "POST", "/whip/", "application/sdp", "s3cret", offerSDP, 404, "no such WHIP resource"},
		{"unknown resource", "DELETE", "/whip/cam1/abc", "", "s3cret", "", 404, "no such WHIP resource"},
		{"DELETE without token", "DELETE", "/whip/cam1/abc", "", "", "", 401, "token"},
		{"GET", "GET", "/whip/cam1", "", "s3cret", "", 405, "method not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := request(t, c.method, s.url+c.path, c.contentType, c.token, []byte(c.body))
			if resp.StatusCode != c.status || !strings.Contains(body, c.says) {
				t.Fatalf("%d %q, want %d saying %q", resp.StatusCode, body, c.status, c.says)
			}
			if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n := s.h.Publishers(); n != 0 {
		t.Fatalf("%d resources after refusals", n)
	}
}

func TestOptionsAnswersCORSPreflight(t *testing.T) {
	s := newTestServer(t, nil)
	resp, _ := request(t, http.MethodOptions, s.url+"/whip/cam1", "", "", nil,
		"Origin", "https://studio.example", "Access-Control-Request-Method", "POST")
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
		h.Get("Access-Control-Allow-Methods") != corsMethods || h.Get("Access-Control-Allow-Headers") != corsHeaders ||
		h.Get("Accept-Post") != "application/sdp" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("%d %v", resp.StatusCode, h)
	}
	resp, _ = request(t, http.MethodOptions, s.url+"/whip/cam1/abc", "", "", nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// closedOrFailed returns a channel closed when pc's connection is closed
// or failed (the server ended it).
func closedOrFailed(pc *webrtc.PeerConnection) <-chan struct{} {
	ch := make(chan struct{})
	var once bool
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if (s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed) && !once {
			once = true
			close(ch)
		}
	})
	return ch
}

func TestStalledPublisherEndsAtIdle(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Idle = 300 * time.Millisecond })
	p := piontest.NewPublisher(t, nil)
	loc := publish(t, p, s.url+"/whip/cam1", "")
	gone := closedOrFailed(p.PC)
	select {
	case <-gone:
	case <-time.After(testTimeout):
		t.Fatal("the stalled publisher's connection was not ended")
	}
	if n := s.h.Publishers(); n != 0 {
		t.Fatalf("%d resources left", n)
	}
	if s.rec.Count() != 0 {
		t.Fatal("a publication without media went live")
	}
	if resp, _ := request(t, http.MethodDelete, s.url+loc, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE after the idle end: %d, want 404", resp.StatusCode)
	}
}

func TestSecondPublisherTakesOver(t *testing.T) {
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	first := ref.Frames[:90] // one GOP and a half
	s := newTestServer(t, nil)
	a := piontest.NewPublisher(t, nil)
	publish(t, a, s.url+"/whip/cam1", "")
	a.Send(t, first, 1)
	pa := s.rec.Opened(t, testTimeout)
	pa.WaitFrames(t, 1, testTimeout)

	aGone := closedOrFailed(a.PC)
	b := piontest.NewPublisher(t, nil)
	locB := publish(t, b, s.url+"/whip/cam1", "")
	b.Send(t, first, 1)
	pb := s.rec.Opened(t, testTimeout)
	pa.WaitEnded(t, testTimeout)
	pb.WaitFrames(t, 1, testTimeout)
	if pb.Epoch <= pa.Epoch {
		t.Fatalf("epoch %d after %d", pb.Epoch, pa.Epoch)
	}
	select {
	case <-aGone:
	case <-time.After(testTimeout):
		t.Fatal("the publisher taken over was not disconnected")
	}
	if n := s.h.Publishers(); n != 1 {
		t.Fatalf("%d resources, want the new publisher's only", n)
	}
	if resp, _ := request(t, http.MethodDelete, s.url+locB, "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	pb.WaitEnded(t, testTimeout)
}

func TestPublishPage(t *testing.T) {
	s := newTestServer(t, nil)
	mux := http.NewServeMux()
	mux.Handle(PublishPrefix, PublishPage())
	front := httptest.NewServer(s.h.InFrontOf(mux))
	t.Cleanup(front.Close)
	resp, body := request(t, http.MethodGet, front.URL+"/publish/cam1", "", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(body, `"/whip/"`) || !strings.Contains(body, "getUserMedia") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := request(t, http.MethodGet, front.URL+"/publish/a*b", "", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("invalid name: %d", resp.StatusCode)
	}
	// WHIP paths reach the handler as they came: a dot segment is refused,
	// not redirected by the mux.
	resp, body = request(t, http.MethodPost, front.URL+"/whip/x/../cam1", "application/sdp", "", []byte(offerSDP))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "dot segment") {
		t.Fatalf("dot segment: %d %s", resp.StatusCode, body)
	}
}

func TestPatchTricklesAndRestartsICE(t *testing.T) {
	s := newTestServer(t, nil)
	p := piontest.NewPublisher(t, nil)
	offer := piontest.Offer(t, p.PC)
	resp, body := request(t, http.MethodPost, s.url+"/whip/cam1", "application/sdp", "", []byte(offer))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	loc, etag := s.url+resp.Header.Get("Location"), resp.Header.Get("ETag")
	ufrag, pwd := credentialsOf(offer)
	const frag = "application/trickle-ice-sdpfrag"
	trickle := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
	restart := "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpassword12\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	cases := []struct {
		name, contentType, body string
		hdr                     []string
		status                  int
	}{
		{"wrong content type", "application/sdp", trickle, nil, http.StatusUnsupportedMediaType},
		{"not a fragment", frag, "m=", nil, http.StatusBadRequest},
		{"trickle", frag, trickle, nil, http.StatusNoContent},
		{"restart without If-Match", frag, restart, nil, http.StatusPreconditionRequired},
		{"restart with a stale If-Match", frag, restart, []string{"If-Match", `"stale"`}, http.StatusPreconditionFailed},
		{"restart", frag, restart, []string{"If-Match", etag}, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := request(t, http.MethodPatch, loc, c.contentType, "", []byte(c.body), c.hdr...)
			if resp.StatusCode != c.status {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, c.status)
			}
			if c.status == http.StatusOK {
				if resp.Header.Get("Content-Type") != frag || resp.Header.Get("ETag") == etag || resp.Header.Get("ETag") == "" ||
					!strings.Contains(body, "a=ice-ufrag:") || !strings.Contains(body, "a=candidate:") {
					t.Fatalf("restart answer %v:\n%s", resp.Header, body)
				}
			}
		})
	}
	if resp, _ := request(t, http.MethodDelete, loc, "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
}
