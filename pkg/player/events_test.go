package player

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// sseReader reads server-sent events from a response body.
type sseReader struct {
	body io.Reader
	buf  []byte
}

// next returns the next event's name and data, skipping comments.
func (r *sseReader) next() (string, string, error) {
	for {
		if i := strings.Index(string(r.buf), "\n\n"); i >= 0 {
			block := string(r.buf[:i])
			r.buf = r.buf[i+2:]
			var name, data string
			for _, line := range strings.Split(block, "\n") {
				switch {
				case strings.HasPrefix(line, "event: "):
					name = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					data = strings.TrimPrefix(line, "data: ")
				}
			}
			if name == "" && data == "" {
				continue // a comment
			}
			return name, data, nil
		}
		chunk := make([]byte, 4096)
		n, err := r.body.Read(chunk)
		r.buf = append(r.buf, chunk[:n]...)
		if err != nil {
			return "", "", err
		}
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestEventsDeliverCatalogChanges(t *testing.T) {
	fake := newFakeLister(avEntry("demo"))
	srv := httptest.NewServer(Handler(fake, nil))
	defer srv.Close()

	req, err := http.NewRequest("GET", srv.URL+"/streams/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	waitSignal(t, fake.joined, "the subscription")

	type result struct {
		name, data string
		err        error
	}
	r := &sseReader{body: res.Body}
	read := func() result {
		ch := make(chan result, 1)
		go func() {
			n, d, err := r.next()
			ch <- result{n, d, err}
		}()
		select {
		case got := <-ch:
			return got
		case <-time.After(5 * time.Second):
			res.Body.Close() // unblocks the reader
			<-ch
			t.Fatal("timed out waiting for an event")
			return result{}
		}
	}

	got := read()
	var snap []StreamView
	if got.err != nil || got.name != "snapshot" || json.Unmarshal([]byte(got.data), &snap) != nil || len(snap) != 1 || snap[0].Stream != "demo" {
		t.Fatalf("first event %q %q %v", got.name, got.data, got.err)
	}

	// A new stream goes live, then the first one ends.
	fake.send(aacEntry("cam"))
	got = read()
	var v StreamView
	if got.err != nil || got.name != "entry" || json.Unmarshal([]byte(got.data), &v) != nil {
		t.Fatalf("second event %q %q %v", got.name, got.data, got.err)
	}
	if v.Stream != "cam" || v.State != "live" || v.Play != "play/cam" || len(v.Notes) != 1 {
		t.Errorf("entry %+v", v)
	}
	ended := avEntry("demo")
	ended.State = bus.StateEnded
	fake.send(ended)
	got = read()
	if got.err != nil || got.name != "entry" || json.Unmarshal([]byte(got.data), &v) != nil || v.Stream != "demo" || v.State != "ended" {
		t.Fatalf("third event %q %q %v", got.name, got.data, got.err)
	}

	// The client leaves: the handler ends its subscription.
	res.Body.Close()
	waitSignal(t, fake.left, "the subscription to end")
}

func TestEventsEndWhenCatalogStops(t *testing.T) {
	fake := newFakeLister()
	srv := httptest.NewServer(Handler(fake, nil))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/streams/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	waitSignal(t, fake.joined, "the subscription")
	fake.closeAll()
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(res.Body) // returns at the end of the response
		done <- b
	}()
	select {
	case b := <-done:
		if want := "event: snapshot\ndata: []\n\n"; string(b) != want {
			t.Errorf("body %q, want %q", b, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the events response did not end when the catalog stopped")
	}
	waitSignal(t, fake.left, "the subscription to end")
}
