package node

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/config"
)

// TestServeExportsWithTheWHEPToken: GET /export/ is served beside WHEP and
// asks for the same bearer token.
func TestServeExportsWithTheWHEPToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, stop := serveTest(t, ctx, natstest.EmbeddedConn(t), config.WHEP{ICEUDPAddr: "127.0.0.1:0", WaitTimeout: time.Second, Tokens: []string{"secret"}})
	url := "http://" + addr + "/export/cam.ts?from=-1m"
	for _, c := range []struct {
		auth string
		code int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer secret", http.StatusNotFound}, // no such stream
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("GET /export/ with %q: %d, want %d", c.auth, resp.StatusCode, c.code)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
