package broker

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServesWHIPOnTheIngestPort: /whip/{stream} reaches the WHIP handler
// (with the ingest token) and /publish/{stream} serves the browser page.
func TestServesWHIPOnTheIngestPort(t *testing.T) {
	b := startBroker(t, testConfig(t, "--storage", "memory", "--ingest-token", "s3cret"), Options{})
	base := "http://" + b.IngestAddr().String()
	do := func(method, path, token, contentType, body string) (int, string, http.Header) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
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
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := do(http.MethodPost, "/whip/cam1", "", "application/sdp", "v=0"); code != http.StatusUnauthorized {
		t.Fatalf("WHIP without token: %d %q", code, body)
	}
	if code, body, _ := do(http.MethodPost, "/whip/cam1", "s3cret", "application/sdp", "not sdp"); code != http.StatusBadRequest || !strings.Contains(body, "bad SDP offer") {
		t.Fatalf("WHIP with a bad offer: %d %q", code, body)
	}
	if code, body, _ := do(http.MethodPost, "/whip/a/../cam1", "s3cret", "application/sdp", "v=0"); code != http.StatusBadRequest {
		t.Fatalf("WHIP path with a dot segment: %d %q", code, body)
	}
	if code, body, h := do(http.MethodGet, "/publish/cam1", "", "", ""); code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(body, "/whip/") {
		t.Fatalf("publish page: %d %v", code, h)
	}
}
