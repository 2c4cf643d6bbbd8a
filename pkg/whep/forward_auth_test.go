package whep

import (
	"net/http"
	"testing"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/sdpfrag"
)

// TestForwardedRequestsUseOwnerTokens sends PATCH, DELETE and events
// requests for a session of node A through node B: A's tokens decide,
// whatever B's are.
func TestForwardedRequestsUseOwnerTokens(t *testing.T) {
	for _, tc := range []struct {
		name          string
		owner, other  []string // tokens of A (the owner) and B
		denied, admit string   // a token A refuses ("" for none) and one it accepts
	}{
		{name: "owner with token, other open", owner: []string{"owner-tok"}, denied: "", admit: "owner-tok"},
		{name: "owner with token, other with its own", owner: []string{"owner-tok"}, other: []string{"other-tok"},
			denied: "other-tok", admit: "owner-tok"},
		{name: "owner open, other with token", other: []string{"other-tok"}, admit: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
			a := newTestServer(t, func(c *Config) { c.NodeID = "node-a"; c.Tokens = tc.owner },
				func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
			b := newTestServer(t, func(c *Config) { c.NodeID = "node-b"; c.Tokens = tc.other },
				func(d *Deps) { d.Conn = natstest.Connect(t, ns) })
			a.catalog.set(liveEntry("cam", trackH264))
			b.catalog.set(liveEntry("cam", trackH264))

			bearerOf := func(tok string, kv ...string) http.Header {
				if tok != "" {
					kv = append(kv, "Authorization", "Bearer "+tok)
				}
				return hdr(kv...)
			}
			resp, body := a.post(t, ctx, "cam", fixedOffer("video"), bearerOf(tc.admit))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST = %d %q", resp.StatusCode, body)
			}
			loc, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
			trickle := trickleFrag("abcd", "abcdefghijklmnopqrstuvwx", "video", "0")

			if tc.owner != nil {
				// Refused by the owner, whatever B would have said.
				for _, rq := range []struct {
					method, path string
					header       http.Header
					body         string
				}{
					{http.MethodPatch, loc, bearerOf(tc.denied, "Content-Type", sdpfrag.MediaType, "If-Match", etag), trickle},
					{http.MethodDelete, loc, bearerOf(tc.denied), ""},
					{http.MethodPost, loc + "/events", bearerOf(tc.denied), ""},
					{http.MethodGet, loc + "/events", bearerOf(tc.denied), ""},
					{http.MethodDelete, loc + "?token=" + tc.denied, nil, ""},
				} {
					r, body := b.do(t, ctx, rq.method, rq.path, rq.header, rq.body)
					if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s with %q via B = %d %v %q, want 401", rq.method, rq.path, tc.denied, r.StatusCode, r.Header, body)
					}
				}
				a.waitSessions(t, ctx, 1)
				if v := a.media.all()[0]; v.isClosed() {
					t.Fatal("an unauthorized forwarded request closed the viewer")
				}
			}

			// Accepted by the owner: trickle, an event stream, then DELETE.
			r, body := b.do(t, ctx, http.MethodPatch, loc, bearerOf(tc.admit, "Content-Type", sdpfrag.MediaType, "If-Match", etag), trickle)
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("PATCH via B = %d %q", r.StatusCode, body)
			}
			r, body = b.do(t, ctx, http.MethodPost, loc+"/events", bearerOf(tc.admit), "")
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("POST events via B = %d %q", r.StatusCode, body)
			}
			events := r.Header.Get("Location")
			if tc.owner != nil {
				if r, _ := b.do(t, ctx, http.MethodDelete, events, bearerOf(tc.denied), ""); r.StatusCode != http.StatusUnauthorized {
					t.Errorf("DELETE event stream with %q via B = %d, want 401", tc.denied, r.StatusCode)
				}
			}
			if r, body := b.do(t, ctx, http.MethodDelete, events, bearerOf(tc.admit), ""); r.StatusCode != http.StatusOK {
				t.Fatalf("DELETE event stream via B = %d %q", r.StatusCode, body)
			}
			if tc.admit == "" {
				// Open owner: the token set of B is not asked.
				if r, _ := b.do(t, ctx, http.MethodDelete, loc, bearerOf("wrong"), ""); r.StatusCode != http.StatusOK {
					t.Fatalf("DELETE via B with B's wrong token = %d, want the owner's 200", r.StatusCode)
				}
			} else if r, _ := b.do(t, ctx, http.MethodDelete, loc+"?token="+tc.admit, nil, ""); r.StatusCode != http.StatusOK {
				t.Fatalf("DELETE via B with ?token= = %d", r.StatusCode)
			}
			a.waitSessions(t, ctx, 0)
		})
	}
}
