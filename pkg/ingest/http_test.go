package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/tstest"
)

// testClient bounds every request of a test.
var testClient = &http.Client{Timeout: testDeadline}

func newTestServer(t *testing.T, ps *Publications, tokens ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHTTPHandler(ps, HTTPConfig{Tokens: tokens}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, body io.Reader, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHTTPIngest(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	srv := newTestServer(t, ps)

	for _, method := range []string{http.MethodPut, http.MethodPost} {
		// A reader of unknown length makes the request chunked.
		status, _, body := do(t, method, srv.URL+"/ingest/cam1", io.MultiReader(bytes.NewReader(data)))
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", method, status, body)
		}
		if !strings.Contains(body, fmt.Sprintf("stream=cam1 epoch=")) || !strings.Contains(body, fmt.Sprintf("bytes=%d frames=%d", len(data), len(want.Frames))) {
			t.Fatalf("%s: summary %q", method, body)
		}
	}
	pubs, _ := f.snapshot()
	if len(pubs) != 2 {
		t.Fatalf("%d publishers, want 2", len(pubs))
	}
	for _, p := range pubs {
		_, frames, _, closed := p.snapshot()
		if !closed {
			t.Fatal("publisher not closed")
		}
		tstest.SameFramesPerTrack(t, frames, want.Frames)
	}
}

func TestHTTPRejects(t *testing.T) {
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	open := newTestServer(t, ps)
	closed := newTestServer(t, ps, "secret", "other")
	ts := tstest.Read(t, "av.ts")[:188*10]

	cases := []struct {
		name   string
		method string
		url    string
		header []string
		status int
		check  func(http.Header, string) error
	}{
		{"GET", http.MethodGet, open.URL + "/ingest/cam1", nil, 405, func(h http.Header, _ string) error {
			if h.Get("Allow") != "PUT, POST" {
				return fmt.Errorf("Allow %q", h.Get("Allow"))
			}
			return nil
		}},
		{"DELETE", http.MethodDelete, open.URL + "/ingest/cam1", nil, 405, nil},
		{"bad name", http.MethodPut, open.URL + "/ingest/cam.1", nil, 400, func(_ http.Header, body string) error {
			if !strings.Contains(body, `invalid stream name: "cam.1"`) {
				return fmt.Errorf("body %q", body)
			}
			return nil
		}},
		{"empty name", http.MethodPut, open.URL + "/ingest/", nil, 400, nil},
		{"slash in name", http.MethodPut, open.URL + "/ingest/a/b", nil, 400, nil},
		{"escaped space", http.MethodPut, open.URL + "/ingest/a%20b", nil, 400, nil},
		{"too long", http.MethodPut, open.URL + "/ingest/" + strings.Repeat("a", 65), nil, 400, nil},
		{"no token", http.MethodPut, closed.URL + "/ingest/cam1", nil, 401, func(h http.Header, _ string) error {
			if h.Get("WWW-Authenticate") != `Bearer realm="whepcast ingest"` {
				return fmt.Errorf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
			return nil
		}},
		{"wrong token", http.MethodPut, closed.URL + "/ingest/cam1", []string{"Authorization", "Bearer secreT"}, 401, func(h http.Header, _ string) error {
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
				return fmt.Errorf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
			return nil
		}},
		{"token prefix", http.MethodPut, closed.URL + "/ingest/cam1", []string{"Authorization", "Bearer secre"}, 401, nil},
		{"basic auth", http.MethodPut, closed.URL + "/ingest/cam1", []string{"Authorization", "Basic c2VjcmV0"}, 401, nil},
		{"auth before name", http.MethodPut, closed.URL + "/ingest/bad.name", nil, 401, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.method, c.url, bytes.NewReader(ts), c.header...)
			if status != c.status {
				t.Fatalf("status %d, want %d (%s)", status, c.status, body)
			}
			if c.check != nil {
				if err := c.check(h, body); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if pubs, _ := f.snapshot(); len(pubs) != 0 {
		t.Fatalf("%d publishers opened by rejected requests", len(pubs))
	}

	for _, tok := range []string{"secret", "other"} {
		status, _, body := do(t, http.MethodPut, closed.URL+"/ingest/cam1", bytes.NewReader(ts), "Authorization", "Bearer "+tok)
		if status != http.StatusOK {
			t.Fatalf("token %s: status %d: %s", tok, status, body)
		}
	}
}

func TestHTTPTakeoverEndsFirstConnection(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	srv := newTestServer(t, ps)
	ctx := t.Context()

	// The first publisher sends half of the file and keeps the body open.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write(data[:len(data)/2])
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/ingest/cam1", pr)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		err    error
	}
	firstDone := make(chan result, 1)
	go func() {
		resp, err := testClient.Do(req)
		if err != nil {
			firstDone <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		firstDone <- result{status: resp.StatusCode}
	}()
	p1 := f.nextPub(t)
	<-p1.got

	status, _, body := do(t, http.MethodPut, srv.URL+"/ingest/cam1", bytes.NewReader(data))
	if status != http.StatusOK {
		t.Fatalf("second publisher: %d %s", status, body)
	}
	select {
	case r := <-firstDone:
		// The first request ends: with 409, or with a connection error when
		// the server closed the connection under the client's body write.
		if r.err == nil && r.status != http.StatusConflict {
			t.Fatalf("first publisher got status %d, want 409 or a closed connection", r.status)
		}
	case <-time.After(testDeadline):
		t.Fatal("first connection did not end")
	}
	pubs, _ := f.snapshot()
	if len(pubs) != 2 || pubs[1].epoch <= p1.epoch {
		t.Fatalf("publishers %d, epochs must increase", len(pubs))
	}
}

func TestHTTPIdleTimeout(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	srv := httptest.NewServer(NewHTTPHandler(ps, HTTPConfig{IdleTimeout: 200 * time.Millisecond}))
	t.Cleanup(srv.Close)

	// The body sends part of the file, then nothing.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(data[:len(data)/2]) }()
	start := time.Now()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/ingest/cam1", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "timeout") {
			t.Fatalf("status %d %q, want 400 with a timeout", resp.StatusCode, body)
		}
	}
	p := f.nextPub(t)
	waitClosed(t, p)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("publication ended after %v, before the idle timeout", d)
	}
	_, frames, _, _ := p.snapshot()
	if len(frames) == 0 {
		t.Fatal("nothing published before the timeout")
	}
}

// A client that closes its connection right after the body (as ffmpeg
// does) still gets every frame published.
func TestHTTPClientClosesAfterBody(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	want := tstest.Demux(t, data)
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	srv := newTestServer(t, ps)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /ingest/cam1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(data))
	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	p := f.nextPub(t)
	waitClosed(t, p)
	_, frames, _, _ := p.snapshot()
	tstest.SameFramesPerTrack(t, frames, want.Frames)
}

// A refused publisher hears so at once, while its (real-time, chunked) body
// is still open: the server must not first read the body it will not use.
func TestHTTPRefusalWhileBodyOpen(t *testing.T) {
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	srv := newTestServer(t, ps, "secret")
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/ingest/cam1", "wrong", http.StatusUnauthorized},
		{"/ingest/bad.name", "secret", http.StatusBadRequest},
	} {
		pr, pw := io.Pipe()
		// 64 KiB written before the request goes out: the body is open,
		// unread and far from its end when the handler refuses it.
		go func() { _, _ = pw.Write(make([]byte, 64<<10)) }()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+tc.path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		resp.Body.Close()
		pw.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}

// Ingest paths are never redirected: a dot segment or an encoded slash is
// 400, in front of a ServeMux that would redirect to the cleaned path.
func TestHTTPNoRedirects(t *testing.T) {
	data := tstest.Read(t, "av.ts")
	f := newFakeFactory()
	ps, _ := newTestPublications(t, f)
	h := NewHTTPHandler(ps, HTTPConfig{})
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") })
	srv := httptest.NewServer(h.InFrontOf(mux))
	t.Cleanup(srv.Close)
	client := &http.Client{
		Timeout:       testDeadline,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/ingest/a/../ref", 400},
		{"/ingest/./ref", 400},
		{"/ingest/%2e%2e/ref", 400},
		{"/ingest/ref/..", 400},
		{"/x/../ingest/ref", 400},
		{"/ingest/a%2Fref", 400},
		{"/ingest/a%2fref", 400},
		{"/ingest/a%5Cref", 400},
		{"/ingest//ref", 400},
		{"/ingest", 404},
		{"/metrics", 200},
		{"/ingest/ref", 200},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+c.path, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("PUT %s: %d %q (Location %q), want %d", c.path, resp.StatusCode, body, resp.Header.Get("Location"), c.status)
		}
	}
	if pubs, _ := f.snapshot(); len(pubs) != 1 {
		t.Fatalf("%d publishers opened, want 1 (ref)", len(pubs))
	}
}
