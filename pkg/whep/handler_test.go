package whep

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// startTURN runs a STUN/TURN server on 127.0.0.1 (user u, password p) and
// returns its address.
func startTURN(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := turn.GenerateAuthKey("u", "whepcast", "p")
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         "whepcast",
		LoggerFactory: pionLoggerFactory{logger: slog.New(slog.DiscardHandler)},
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == "u"
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return conn.LocalAddr().String()
}

// fixedOffer is a minimal valid offer (recvonly video and audio); sessions
// made from it never connect.
func fixedOffer(kinds ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	b.WriteString("a=fingerprint:sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":") + "\r\n")
	b.WriteString("a=group:BUNDLE")
	for i := range kinds {
		fmt.Fprintf(&b, " %d", i)
	}
	b.WriteString("\r\n")
	for i, k := range kinds {
		dir := "recvonly"
		if strings.HasSuffix(k, ":sendonly") {
			k, dir = strings.TrimSuffix(k, ":sendonly"), "sendonly"
		}
		switch k {
		case "video":
			b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n")
			b.WriteString("a=rtpmap:96 H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n")
		case "h265": // as Chrome offers it with hardware decoding: Main and Main 10
			b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 49 51\r\nc=IN IP4 0.0.0.0\r\n")
			b.WriteString("a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n")
			b.WriteString("a=rtpmap:51 H265/90000\r\na=fmtp:51 level-id=93;profile-id=2;tier-flag=0;tx-mode=SRST\r\n")
		case "h265+h264":
			b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 49 96\r\nc=IN IP4 0.0.0.0\r\n")
			b.WriteString("a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n")
			b.WriteString("a=rtpmap:96 H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n")
		case "vp8":
			b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:97 VP8/90000\r\n")
		case "audio":
			b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n")
		case "pcmu":
			b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n")
		}
		fmt.Fprintf(&b, "a=mid:%d\r\na=%s\r\na=rtcp-mux\r\na=setup:actpass\r\n", i, dir)
		b.WriteString("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
	}
	return b.String()
}

// trickle returns a trickle fragment with the fixed offer's credentials.
func trickleFrag(ufrag, pwd, kind, mid string) string {
	return "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=" + kind + " 9 RTP/AVP 0\r\na=mid:" + mid +
		"\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
}

type statusCase struct {
	name    string
	server  string // "open" (default), "auth" or "drained"
	method  string
	path    string // {session} and {location} are replaced
	header  http.Header
	body    string
	status  int
	want    map[string]string         // exact header values
	match   map[string]*regexp.Regexp // header patterns
	absent  []string                  // headers that must not be set
	links   []string                  // exact rel="ice-server" Link values, in order
	inBody  []string
	noBody  bool
	setup   func(t *testing.T)
	inspect func(t *testing.T, resp *http.Response, body string)
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var (
	reLocation = regexp.MustCompile(`^/whep/cam/node-a\.[a-z2-7]{26}$`)
	reETag     = regexp.MustCompile(`^"[0-9a-f]{16}"$`)
)

// TestStatusCodes checks every status code and header of the checklist,
// against one open server (with STUN and TURN servers configured) and one
// that needs a token.
func TestStatusCodes(t *testing.T) {
	ctx := t.Context()
	turnAddr := startTURN(t)
	open := newTestServer(t, func(c *Config) {
		c.WaitTimeout = 200 * time.Millisecond
		c.ICEServers = []string{"stun:" + turnAddr, "turn:" + turnAddr + "?transport=udp&username=u&credential=p"}
	})
	auth := newTestServer(t, func(c *Config) {
		c.Tokens = []string{"s3cret"}
		c.NodeID = "node-b"
	})
	drained := newTestServer(t, func(c *Config) { c.NodeID = "node-c" })
	drained.catalog.set(liveEntry("cam", trackH264, trackOpus))
	dresp, dbody := drained.post(t, ctx, "cam", fixedOffer("video"), nil)
	if dresp.StatusCode != http.StatusCreated {
		t.Fatalf("setup POST = %d %q", dresp.StatusCode, dbody)
	}
	drainedLocation := dresp.Header.Get("Location")
	drained.srv.beginShutdown()
	for _, ts := range []*testServer{open, auth} {
		ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
		ts.catalog.set(liveEntry("aac", trackH264, trackAAC))
		ts.catalog.set(liveEntry("vonly", trackH264))
	}
	// A session of the open server to PATCH and DELETE: its offer's
	// credentials are abcd / abcdefghijklmnopqrstuvwx, mids 0 (video) and 1.
	resp, body := open.post(t, ctx, "cam", fixedOffer("video", "audio"), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("setup POST = %d %q", resp.StatusCode, body)
	}
	location, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
	sdpHeader := hdr("Content-Type", "application/sdp")
	fragHeader := func(kv ...string) http.Header {
		return hdr(append([]string{"Content-Type", "application/trickle-ice-sdpfrag"}, kv...)...)
	}
	trickle := trickleFrag("abcd", "abcdefghijklmnopqrstuvwx", "video", "0")
	restart := trickleFrag("wxyz", "zyxwvutsrqponmlkjihgfedc", "video", "0")
	turnLink := "<turn:" + turnAddr + `?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`
	stunLink := "<stun:" + turnAddr + `>; rel="ice-server"`
	var joinsBefore int

	cases := []statusCase{
		// POST
		{name: "POST creates a session", method: "POST", path: "/whep/cam", header: sdpHeader, body: fixedOffer("video", "audio"),
			status: 201,
			want:   map[string]string{"Content-Type": "application/sdp", "Accept-Patch": "application/trickle-ice-sdpfrag"},
			match:  map[string]*regexp.Regexp{"Location": reLocation, "ETag": reETag},
			links:  []string{stunLink, turnLink},
			absent: []string{"Access-Control-Allow-Origin"},
			inBody: []string{"v=0\r\n", "a=group:BUNDLE 0 1\r\n", "a=sendonly\r\n", "a=rtcp-mux\r\n", "typ host", "typ relay", "a=end-of-candidates\r\n"},
			inspect: func(t *testing.T, resp *http.Response, body string) {
				if resp.Header.Get("Location") == location || resp.Header.Get("ETag") == etag {
					t.Errorf("second session reuses Location/ETag")
				}
				if n := strings.Count(body, "a=msid:"); n != 2 {
					t.Errorf("answer has %d msid lines, want 2", n)
				}
			}},
		{name: "POST charset parameter is fine", method: "POST", path: "/whep/cam", header: hdr("Content-Type", "application/SDP; charset=utf-8"),
			body: fixedOffer("video"), status: 201},
		{name: "POST cross-origin exposes headers", method: "POST", path: "/whep/cam", header: hdr("Content-Type", "application/sdp", "Origin", "https://player.example"),
			body: fixedOffer("audio"), status: 201,
			want: map[string]string{"Access-Control-Allow-Origin": "*",
				"Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, WWW-Authenticate"}},
		{name: "POST wrong content type", method: "POST", path: "/whep/cam", header: hdr("Content-Type", "text/plain"), body: fixedOffer("video"),
			status: 415, inBody: []string{"unsupported Content-Type"}},
		{name: "POST no content type", method: "POST", path: "/whep/cam", body: fixedOffer("video"), status: 415},
		{name: "POST malformed SDP", method: "POST", path: "/whep/cam", header: sdpHeader, body: "hello", status: 400,
			inBody: []string{"malformed SDP offer"}},
		{name: "POST SDP without mid", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: strings.ReplaceAll(fixedOffer("video"), "a=mid:0\r\n", ""), status: 400, inBody: []string{"no a=mid"}},
		{name: "POST SDP with a duplicate mid", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: strings.ReplaceAll(fixedOffer("video", "audio"), "a=mid:1", "a=mid:0"), status: 400,
			inBody: []string{"media sections 1 and 2 have the same a=mid:0"}},
		{name: "POST SDP without fingerprint", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: regexp.MustCompile(`a=fingerprint:[^\r]*\r\n`).ReplaceAllString(fixedOffer("video"), ""), status: 400},
		{name: "POST empty body", method: "POST", path: "/whep/cam", header: sdpHeader, status: 400},
		{name: "POST too large", method: "POST", path: "/whep/cam", header: sdpHeader, body: strings.Repeat("a", MaxOfferSize+1),
			status: 413},
		{name: "POST bad stream name subscribes nothing", method: "POST", path: "/whep/bad.name", header: sdpHeader, body: fixedOffer("video"),
			status: 400, inBody: []string{"invalid stream name"},
			setup: func(*testing.T) { joinsBefore = len(open.media.all()) },
			inspect: func(t *testing.T, _ *http.Response, _ string) {
				if n := open.catalog.waits(); n != 0 {
					t.Errorf("catalog waited %d times", n)
				}
				if n := len(open.media.all()); n != joinsBefore {
					t.Errorf("media joined %d times", n-joinsBefore)
				}
			}},
		{name: "POST stream not live", method: "POST", path: "/whep/nosuch", header: sdpHeader, body: fixedOffer("video"),
			status: 409, want: map[string]string{"Retry-After": "5"}, inBody: []string{`stream "nosuch" did not go live within 200ms`}},
		{name: "POST audio offer on H.264+AAC", method: "POST", path: "/whep/aac", header: sdpHeader, body: fixedOffer("audio"),
			status: 422, inBody: []string{"audio is AAC, which WebRTC cannot carry", "video (H264) was not offered"}},
		{name: "POST video+audio offer on H.264+AAC plays video", method: "POST", path: "/whep/aac", header: sdpHeader,
			body: fixedOffer("video", "audio"), status: 201, inspect: func(t *testing.T, _ *http.Response, body string) {
				if !strings.Contains(body, "m=audio 9 UDP/TLS/RTP/SAVPF 111") || strings.Count(body, "a=inactive") != 1 {
					t.Errorf("audio not answered inactive:\n%s", body)
				}
			}},
		{name: "POST rejected first section keeps candidates in the bundle", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: fixedOffer("pcmu", "video"), status: 201, inspect: func(t *testing.T, _ *http.Response, body string) {
				audio, video, ok := strings.Cut(body, "m=video ")
				if !ok || !strings.Contains(audio, "m=audio 0 ") || strings.Contains(audio, "a=candidate") ||
					!strings.Contains(video, "a=candidate:") || !strings.Contains(video, "a=end-of-candidates") ||
					!strings.Contains(body, "a=group:BUNDLE 1\r\n") {
					t.Errorf("answer:\n%s", body)
				}
			}},
		{name: "POST second video section answered inactive", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: fixedOffer("video", "video"), status: 201, inspect: func(t *testing.T, _ *http.Response, body string) {
				if strings.Count(body, "a=sendonly") != 1 || strings.Count(body, "a=inactive") != 1 {
					t.Errorf("answer:\n%s", body)
				}
			}},
		{name: "POST sendrecv offer answered sendonly", method: "POST", path: "/whep/cam", header: sdpHeader,
			body: strings.ReplaceAll(fixedOffer("video", "audio"), "a=recvonly", "a=sendrecv"), status: 201,
			inspect: func(t *testing.T, _ *http.Response, body string) {
				if strings.Count(body, "a=sendonly") != 2 || strings.Contains(body, "a=sendrecv") {
					t.Errorf("answer:\n%s", body)
				}
			}},
		{name: "POST audio offer on video-only stream", method: "POST", path: "/whep/vonly", header: sdpHeader, body: fixedOffer("audio"),
			status: 422, inBody: []string{"the stream has no audio"}},
		{name: "POST VP8-only offer", method: "POST", path: "/whep/cam", header: sdpHeader, body: fixedOffer("vp8"),
			status: 422, inBody: []string{"does not accept H264", "audio (Opus) was not offered"}},
		{name: "POST sendonly offer", method: "POST", path: "/whep/cam", header: sdpHeader, body: fixedOffer("video:sendonly"),
			status: 422, inBody: []string{"no audio or video section to receive"}},
		{name: "GET endpoint", method: "GET", path: "/whep/cam", status: 204, noBody: true, absent: []string{"Content-Type"}},
		{name: "HEAD endpoint", method: "HEAD", path: "/whep/cam", status: 204, noBody: true},
		{name: "GET endpoint of a stream not live", method: "GET", path: "/whep/nosuch", status: 204, noBody: true},
		{name: "PUT endpoint", method: "PUT", path: "/whep/cam", status: 405, want: map[string]string{"Allow": "OPTIONS, GET, HEAD, POST"}},
		{name: "OPTIONS endpoint", method: "OPTIONS", path: "/whep/cam", status: 204, noBody: true,
			want:   map[string]string{"Accept-Post": "application/sdp", "Allow": "OPTIONS, GET, HEAD, POST"},
			absent: []string{"Link", "Access-Control-Allow-Methods"}},
		{name: "preflight endpoint", method: "OPTIONS", path: "/whep/cam",
			header: hdr("Origin", "https://player.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type"),
			status: 204, noBody: true,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match", "Accept-Post": "application/sdp"},
			absent: []string{"Link"}},
		{name: "no resource", method: "POST", path: "/whep/", header: sdpHeader, body: fixedOffer("video"), status: 404},
		{name: "too deep", method: "DELETE", path: "/whep/cam/x/y", status: 404},

		// Session resource.
		{name: "OPTIONS session", method: "OPTIONS", path: "{location}", status: 204,
			want: map[string]string{"Accept-Patch": "application/trickle-ice-sdpfrag", "Allow": "OPTIONS, GET, HEAD, PATCH, DELETE"}},
		{name: "preflight session", method: "OPTIONS", path: "{location}",
			header: hdr("Origin", "https://player.example", "Access-Control-Request-Method", "PATCH"), status: 204,
			want: map[string]string{"Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS", "Access-Control-Allow-Origin": "*"}},
		{name: "GET session", method: "GET", path: "{location}", status: 204, noBody: true, absent: []string{"Content-Type"}},
		{name: "HEAD session", method: "HEAD", path: "{location}", status: 204, noBody: true},
		{name: "GET session cross-origin", method: "GET", path: "{location}", header: hdr("Origin", "https://player.example"), status: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "*"}},
		{name: "POST session", method: "POST", path: "{location}", header: sdpHeader, body: fixedOffer("video"), status: 405,
			want: map[string]string{"Allow": "OPTIONS, GET, HEAD, PATCH, DELETE"}},
		{name: "PATCH trickle with If-Match", method: "PATCH", path: "{location}", header: fragHeader("If-Match", etag), body: trickle,
			status: 204, noBody: true, absent: []string{"ETag", "Content-Type"}},
		{name: "PATCH trickle without If-Match (medooze)", method: "PATCH", path: "{location}", header: fragHeader(), body: trickle,
			status: 204, noBody: true},
		{name: "PATCH trickle If-Match *", method: "PATCH", path: "{location}", header: fragHeader("If-Match", "*"), body: trickle, status: 204},
		{name: "PATCH trickle If-Match list", method: "PATCH", path: "{location}", header: fragHeader("If-Match", `"0000000000000000", `+etag),
			body: trickle, status: 204},
		{name: "PATCH cross-origin exposes headers", method: "PATCH", path: "{location}",
			header: fragHeader("Origin", "https://player.example"), body: trickle, status: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "*"}, match: map[string]*regexp.Regexp{"Access-Control-Expose-Headers": regexp.MustCompile(`ETag`)}},
		{name: "PATCH stale ETag", method: "PATCH", path: "{location}", header: fragHeader("If-Match", `"0000000000000000"`), body: trickle,
			status: 412},
		{name: "PATCH weak ETag", method: "PATCH", path: "{location}", header: fragHeader("If-Match", "W/"+etag), body: trickle, status: 412},
		{name: "PATCH restart without If-Match", method: "PATCH", path: "{location}", header: fragHeader(), body: restart, status: 428},
		{name: "PATCH restart stale If-Match", method: "PATCH", path: "{location}", header: fragHeader("If-Match", `"0000000000000000"`),
			body: restart, status: 412},
		{name: "PATCH wrong content type", method: "PATCH", path: "{location}", header: hdr("Content-Type", "application/sdp"), body: trickle,
			status: 415},
		{name: "PATCH malformed fragment", method: "PATCH", path: "{location}", header: fragHeader(), body: "m=video 9\r\n", status: 400},
		{name: "PATCH malformed candidate", method: "PATCH", path: "{location}", header: fragHeader(),
			body: "m=video 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp x 127.0.0.1 9 typ host\r\n", status: 400},
		{name: "PATCH unusable candidate ignored", method: "PATCH", path: "{location}", header: fragHeader(),
			body: "m=video 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 sctp 1 127.0.0.1 9 typ weird\r\na=candidate:2 1 udp 1 x.local 9 typ host\r\n", status: 204},
		{name: "PATCH application section", method: "PATCH", path: "{location}", header: fragHeader(),
			body: "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n", status: 422},
		{name: "PATCH unknown mid, the session's credentials", method: "PATCH", path: "{location}", header: fragHeader(),
			body: trickleFrag("abcd", "abcdefghijklmnopqrstuvwx", "video", "7"), status: 204, noBody: true},
		{name: "PATCH mid null, the session's credentials (medooze in Firefox)", method: "PATCH", path: "{location}", header: fragHeader(),
			body: trickleFrag("abcd", "abcdefghijklmnopqrstuvwx", "audio", "null"), status: 204, noBody: true},
		{name: "PATCH unknown mid, other credentials", method: "PATCH", path: "{location}", header: fragHeader("If-Match", etag),
			body: trickleFrag("wxyz", "zyxwvutsrqponmlkjihgfedc", "video", "7"), status: 422, inBody: []string{`mid "7"`}},
		{name: "PATCH unknown mid, no credentials", method: "PATCH", path: "{location}", header: fragHeader(),
			body: "m=video 9 RTP/AVP 0\r\na=mid:null\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n", status: 422},
		{name: "PATCH fragment over sdpfrag limit", method: "PATCH", path: "{location}", header: fragHeader(),
			body: strings.Repeat("a=x\r\n", 70000/5), status: 413},
		{name: "PATCH body over limit", method: "PATCH", path: "{location}", header: fragHeader(), body: strings.Repeat("a", MaxOfferSize+1),
			status: 413},
		{name: "PATCH unknown session", method: "PATCH", path: "/whep/cam/node-a.aaaaaaaaaaaaaaaaaaaaaaaaaa", header: fragHeader(), body: trickle,
			status: 404},
		{name: "PATCH malformed session id", method: "PATCH", path: "/whep/cam/nonsense", header: fragHeader(), body: trickle, status: 404},
		{name: "PATCH other node without bus", method: "PATCH", path: "/whep/cam/node-z.aaaaaaaaaaaaaaaaaaaaaaaaaa", header: fragHeader(),
			body: trickle, status: 404},
		{name: "PATCH wrong stream", method: "PATCH", path: strings.Replace(location, "/cam/", "/aac/", 1), header: fragHeader(), body: trickle,
			status: 404},
		{name: "DELETE ignores If-Match", method: "DELETE", path: "{location}", header: hdr("If-Match", `"0000000000000000"`), status: 200,
			noBody: true},
		{name: "DELETE again", method: "DELETE", path: "{location}", status: 404},
		{name: "PATCH after DELETE", method: "PATCH", path: "{location}", header: fragHeader(), body: trickle, status: 404},

		// Authentication.
		{name: "auth POST without token", server: "auth", method: "POST", path: "/whep/cam", header: sdpHeader, body: fixedOffer("video"),
			status: 401, want: map[string]string{"WWW-Authenticate": `Bearer realm="whepcast"`}},
		{name: "auth POST wrong token", server: "auth", method: "POST", path: "/whep/cam",
			header: hdr("Content-Type", "application/sdp", "Authorization", "Bearer nope"), body: fixedOffer("video"), status: 401},
		{name: "auth POST wrong scheme", server: "auth", method: "POST", path: "/whep/cam",
			header: hdr("Content-Type", "application/sdp", "Authorization", "Basic czNjcmV0"), body: fixedOffer("video"), status: 401},
		{name: "auth POST bearer token", server: "auth", method: "POST", path: "/whep/cam",
			header: hdr("Content-Type", "application/sdp", "Authorization", "Bearer s3cret"), body: fixedOffer("video"), status: 201,
			match: map[string]*regexp.Regexp{"Location": regexp.MustCompile(`^/whep/cam/node-b\.`)}, links: []string{}},
		{name: "auth POST token in URL", server: "auth", method: "POST", path: "/whep/cam?token=s3cret", header: sdpHeader,
			body: fixedOffer("video"), status: 201},
		{name: "auth bad name still 401 first", server: "auth", method: "POST", path: "/whep/bad.name", header: sdpHeader, body: "x", status: 401},
		{name: "auth OPTIONS without token", server: "auth", method: "OPTIONS", path: "/whep/cam", status: 204},
		{name: "auth preflight without token", server: "auth", method: "OPTIONS", path: "/whep/cam",
			header: hdr("Origin", "https://x.example", "Access-Control-Request-Method", "POST"), status: 204},
		{name: "auth PATCH without token", server: "auth", method: "PATCH", path: "/whep/cam/node-b.aaaaaaaaaaaaaaaaaaaaaaaaaa",
			header: fragHeader(), body: trickle, status: 401, want: map[string]string{"WWW-Authenticate": `Bearer realm="whepcast"`}},
		{name: "auth DELETE without token", server: "auth", method: "DELETE", path: "/whep/cam/node-b.aaaaaaaaaaaaaaaaaaaaaaaaaa", status: 401},
		{name: "auth DELETE with token", server: "auth", method: "DELETE", path: "/whep/cam/node-b.aaaaaaaaaaaaaaaaaaaaaaaaaa",
			header: hdr("Authorization", "Bearer s3cret"), status: 404},
		{name: "auth sessions without token", server: "auth", method: "GET", path: "/sessions", status: 401},
		{name: "auth sessions with token", server: "auth", method: "GET", path: "/sessions?token=s3cret", status: 200,
			want: map[string]string{"Content-Type": "application/json"}, inBody: []string{`"stream": "cam"`, `"state": "`, `"id": "node-b.`}},
	}
	cases = append(cases,
		statusCase{name: "drained POST", server: "drained", method: "POST", path: "/whep/cam", header: sdpHeader, body: fixedOffer("video"),
			status: 503, want: map[string]string{"Retry-After": "2"}, inBody: []string{"draining"}},
		statusCase{name: "drained cross-origin error exposes headers", server: "drained", method: "POST", path: "/whep/cam",
			header: hdr("Content-Type", "application/sdp", "Origin", "https://p.example"), body: fixedOffer("video"), status: 503,
			want: map[string]string{"Access-Control-Allow-Origin": "*",
				"Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, WWW-Authenticate"}},
		statusCase{name: "drained OPTIONS", server: "drained", method: "OPTIONS", path: "/whep/cam", status: 204},
		statusCase{name: "drained PATCH goes on", server: "drained", method: "PATCH", path: drainedLocation, header: fragHeader(),
			body: trickle, status: 204},
		statusCase{name: "drained DELETE goes on", server: "drained", method: "DELETE", path: drainedLocation, status: 200},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := open
			switch c.server {
			case "auth":
				ts = auth
			case "drained":
				ts = drained
			}
			if c.setup != nil {
				c.setup(t)
			}
			path := strings.ReplaceAll(c.path, "{location}", location)
			resp, body := ts.do(t, ctx, c.method, path, c.header, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s = %d %q, want %d", c.method, path, resp.StatusCode, body, c.status)
			}
			for k, v := range c.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, re := range c.match {
				if got := resp.Header.Get(k); !re.MatchString(got) {
					t.Errorf("%s = %q, want match %v", k, got, re)
				}
			}
			for _, k := range c.absent {
				if got, ok := resp.Header[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("%s = %q, want none", k, got)
				}
			}
			if c.links != nil { // the ice-server links; events_test.go checks the events one
				if got := iceServerLinks(resp.Header.Values("Link")); strings.Join(got, "\n") != strings.Join(c.links, "\n") {
					t.Errorf("Link = %q, want %q", got, c.links)
				}
			}
			for _, s := range c.inBody {
				if !strings.Contains(body, s) {
					t.Errorf("body %q does not contain %q", body, s)
				}
			}
			if c.noBody && body != "" {
				t.Errorf("body = %q, want none", body)
			}
			if c.status >= 400 && c.status != 405 && c.method != "HEAD" && body == "" {
				t.Errorf("error without a message")
			}
			if c.inspect != nil {
				c.inspect(t, resp, body)
			}
		})
	}
}

// TestOverload checks the 503s: MaxSessions, MaxSessionsPerStream,
// MaxWaiting and Shutdown, each with Retry-After.
func TestOverload(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) {
		c.MaxSessions = 3
		c.MaxSessionsPerStream = 2
		c.MaxWaiting = 1
	})
	ts.catalog.set(liveEntry("a", trackH264))
	ts.catalog.set(liveEntry("b", trackH264))
	ts.catalog.set(liveEntry("c", trackH264))
	want := func(stream string, status int) {
		t.Helper()
		resp, body := ts.post(t, ctx, stream, fixedOffer("video"), nil)
		if resp.StatusCode != status {
			t.Fatalf("POST %s = %d %q, want %d", stream, resp.StatusCode, body, status)
		}
		if status == 503 && resp.Header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After")
		}
	}
	want("a", 201)
	want("a", 201)
	want("a", 503) // per stream
	want("b", 201)
	want("c", 503) // per node

	// One POST may wait; a second one is refused while the first waits.
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.http.URL+"/whep/later", strings.NewReader(fixedOffer("video")))
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := ts.client.Do(req)
		if err != nil {
			held <- -1
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	waitFor(t, ctx, "one held request", func() bool { _, n := ts.srv.sessions.counts(); return n == 1 })
	want("later2", 503)
	if got := gaugeValue(t, ts.reg, "whepcast_whep_held_requests"); got != 1 {
		t.Fatalf("held gauge = %v", got)
	}

	// Shutdown wakes the held request with 503 and refuses new POSTs.
	ts.srv.beginShutdown()
	select {
	case st := <-held:
		if st != 503 {
			t.Fatalf("held POST after Shutdown = %d, want 503", st)
		}
	case <-time.After(testTimeout):
		t.Fatal("held POST not woken by Shutdown")
	}
	want("a", 503)
	if err := ts.srv.Ready(); err == nil {
		t.Fatal("Ready after Shutdown = nil")
	}
	if got := gaugeValue(t, ts.reg, "whepcast_whep_held_requests"); got != 0 {
		t.Fatalf("held gauge = %v", got)
	}
}

// TestNoHold checks that MaxWaiting 0 answers 409 at once.
func TestNoHold(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.MaxWaiting = 0; c.WaitTimeout = time.Hour })
	resp, body := ts.post(t, ctx, "off", fixedOffer("video"), nil)
	if resp.StatusCode != 409 || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("POST = %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

var _ = webrtc.MimeTypeH264
var _ = tsframes.CodecH264
var _ context.Context

// TestSlowBody checks that a client that stops sending its body gets 400
// after BodyTimeout instead of holding the request forever.
func TestSlowBody(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, func(c *Config) { c.BodyTimeout = 200 * time.Millisecond })
	ts.catalog.set(liveEntry("cam", trackH264))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(ts.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	fmt.Fprintf(conn, "POST /whep/cam HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 1000\r\n\r\nv=0\r\n")
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("answer %q", got)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
		t.Fatalf("answered after %v", el)
	}
}
