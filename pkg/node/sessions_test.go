package node

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/config"
)

// TestSessionsNeedAdminToken: with --admin-token, GET /sessions (which
// lists session ids) answers 401 without one, even to a loopback client.
func TestSessionsNeedAdminToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, stop := serveTest(t, ctx, natstest.EmbeddedConn(t), config.WHEP{ICEUDPAddr: "127.0.0.1:0", Tokens: []string{"viewer"}, AdminTokens: []string{"adm"}})
	url := "http://" + addr + "/sessions"
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer viewer", 401}, {"Bearer wrong", 401}, {"Bearer adm", 200}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /sessions with %q = %d %q, want %d", c.auth, resp.StatusCode, body, c.want)
		}
		if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
