package export

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDeadline bounds every wait of a test.
const testDeadline = 30 * time.Second

// stored is what the bus holds of one ingested fixture: its frames in
// stream order (one per audio packet), each with its store time.
type stored struct {
	frames []bus.Message
	video  []bus.Message
}

// ingest publishes each fixture as stream name, one epoch after the other,
// as fast as JetStream takes them, and returns what the bus stored, read
// back with a subscription from the stream's first message.
func ingest(t *testing.T, nc *nats.Conn, name string, fixtures ...string) stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	total := 0
	for _, fixture := range fixtures {
		d := tstest.Demux(t, tstest.Read(t, fixture))
		total += len(d.Frames)
		pub, err := bus.NewPublisher(ctx, nc, name, bus.PublisherConfig{Stream: bus.StreamConfig{MaxAge: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range d.Events {
			if ev.Announcement != nil {
				err = pub.Announce(ctx, *ev.Announcement)
			} else {
				err = pub.Publish(ctx, *ev.Frame)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan bus.Message, total+64)
	sub, err := bus.Subscribe(ctx, nc, name, bus.SubscribeOptions{FromSeq: 1}, func(m bus.Message) {
		if m.IsFrame() {
			got <- m
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var s stored
	for len(s.frames) < total {
		select {
		case m := <-got:
			s.frames = append(s.frames, m)
			if m.Frame.Kind == tsframes.KindVideo {
				s.video = append(s.video, m)
			}
		case <-ctx.Done():
			t.Fatalf("read back %d of %d frames", len(s.frames), total)
		}
	}
	return s
}

// between returns the frames of s an export of [from, to] holds: from the
// last keyframe stored at or before from, up to the last frame stored at
// or before to.
func (s stored) between(from, to time.Time) []bus.Message {
	start := -1
	for i, m := range s.frames {
		if m.Frame.Key && !m.Published.After(from) {
			start = i
		}
	}
	var out []bus.Message
	for _, m := range s.frames[start:] {
		if m.Published.After(to) {
			break
		}
		out = append(out, m)
	}
	return out
}

func kind(ms []bus.Message, k tsframes.Kind) []tsframes.Frame {
	var out []tsframes.Frame
	for _, m := range ms {
		if m.Frame.Kind == k {
			out = append(out, m.Frame)
		}
	}
	return out
}

// exportServer serves a Handler on nc over HTTP.
func exportServer(t *testing.T, nc *nats.Conn, cfg Config, auth Authorizer) (*Handler, *httptest.Server) {
	t.Helper()
	h, err := NewHandler(cfg, Deps{Conn: nc, Authorizer: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func get(t *testing.T, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

// exportRange is the sub-range the tests export: from the middle of the
// second GOP to the middle of the fifth (av.ts: 1 s GOPs at 30 fps).
func exportRange(s stored) (from, to time.Time) {
	return s.video[45].Published, s.video[140].Published
}

func TestExportTSStartsAtKeyframeWithTheRangesFrames(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "cam", "av.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	from, to := exportRange(s)
	resp, body := get(t, srv.URL+"/export/cam.ts?from="+rfc(from)+"&to="+rfc(to), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/mp2t" {
		t.Errorf("Content-Type %q", ct)
	}
	if end := resp.Trailer.Get(TrailerEnd); end != "range" {
		t.Errorf("%s trailer %q, want range", TrailerEnd, end)
	}
	want := s.between(from, to)
	got := tstest.Demux(t, body)
	if f := got.Frames[0]; f.Kind != tsframes.KindVideo || !f.Key {
		t.Fatalf("first frame: %s key=%v, want a keyframe", f.Kind, f.Key)
	}
	if f := want[0]; !f.Frame.Key || f.Published.After(from) {
		t.Fatalf("expected range starts with key=%v at %s", f.Frame.Key, f.Published)
	}
	for _, k := range []tsframes.Kind{tsframes.KindVideo, tsframes.KindAudio} {
		w, g := kind(want, k), got.Kind(k)
		if len(g) != len(w) {
			t.Errorf("%s: exported %d frames, the bus holds %d in the range", k, len(g), len(w))
			continue
		}
		for i := range w {
			if !bytes.Equal(g[i].Data, w[i].Data) || g[i].PTS != w[i].PTS || g[i].Key != w[i].Key {
				t.Errorf("%s frame %d: pts %d key=%v %d bytes, want pts %d key=%v %d bytes",
					k, i, g[i].PTS, g[i].Key, len(g[i].Data), w[i].PTS, w[i].Key, len(w[i].Data))
				break
			}
		}
	}
	if n := len(kind(want, tsframes.KindVideo)); n < 90 || n > 120 {
		t.Errorf("range holds %d video frames, want those of 3 to 4 GOPs", n)
	}
}

// readFMP4 parses an fMP4 file: its init segment and its fragments.
func readFMP4(t *testing.T, b []byte) (fmp4.Init, fmp4.Parts) {
	t.Helper()
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("init: %v", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		t.Fatalf("fragments: %v", err)
	}
	return init, parts
}

func TestExportMP4HasTheRangesSamples(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "cam", "av.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	from, to := exportRange(s)
	resp, body := get(t, srv.URL+"/export/cam.mp4?from="+rfc(from)+"&to="+rfc(to), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/mp4" {
		t.Errorf("Content-Type %q", ct)
	}
	want := s.between(from, to)
	video := kind(want, tsframes.KindVideo)
	audio := 0
	for _, f := range kind(want, tsframes.KindAudio) {
		if f.PTS >= video[0].DTS {
			audio++
		}
	}
	init, parts := readFMP4(t, body)
	if len(init.Tracks) != 2 {
		t.Fatalf("init has %d tracks, want video and audio", len(init.Tracks))
	}
	counts := map[int]int{}
	for i, p := range parts {
		for _, tr := range p.Tracks {
			counts[tr.ID] += len(tr.Samples)
			if i == 0 && tr.ID == videoTrackID && tr.Samples[0].IsNonSyncSample {
				t.Error("first video sample is not a sync sample")
			}
		}
	}
	if counts[videoTrackID] != len(video) || counts[audioTrackID] != audio {
		t.Errorf("samples: video %d audio %d, want %d and %d", counts[videoTrackID], counts[audioTrackID], len(video), audio)
	}
}

// bearer accepts "Authorization: Bearer secret" only.
type bearer struct{}

func (bearer) Authorize(r *http.Request) error {
	if r.Header.Get("Authorization") != "Bearer secret" {
		return errors.New("no")
	}
	return nil
}

func TestExportRefusals(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "cam", "av.ts")
	_, srv := exportServer(t, nc, Config{}, bearer{})
	first, last := s.video[0].Published, s.frames[len(s.frames)-1].Published
	auth := http.Header{"Authorization": {"Bearer secret"}}
	for _, c := range []struct {
		name   string
		path   string
		header http.Header
		code   int
		body   string
	}{
		{"no token", "/export/cam.ts?from=-1h", nil, http.StatusUnauthorized, "bearer"},
		{"wrong token", "/export/cam.ts?from=-1h", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized, "bearer"},
		{"unknown stream", "/export/other.ts?from=-1h", auth, http.StatusNotFound, "not found"},
		{"unknown format", "/export/cam.avi?from=-1h", auth, http.StatusNotFound, "format"},
		{"bad name", "/export/a.b.ts?from=-1h", auth, http.StatusBadRequest, "invalid stream name"},
		{"no from", "/export/cam.ts", auth, http.StatusBadRequest, "from is required"},
		{"malformed from", "/export/cam.ts?from=yesterday", auth, http.StatusBadRequest, "bad time"},
		{"malformed to", "/export/cam.ts?from=-1m&to=12:00", auth, http.StatusBadRequest, "bad time"},
		{"positive offset", "/export/cam.ts?from=30s", auth, http.StatusBadRequest, "bad time"},
		{"from after to", "/export/cam.ts?from=-5s&to=-10s", auth, http.StatusBadRequest, "after"},
		{"in the future", "/export/cam.ts?from=" + rfc(last.Add(time.Hour)) + "&to=" + rfc(last.Add(2*time.Hour)), auth,
			http.StatusRequestedRangeNotSatisfiable, first.UTC().Format(time.RFC3339Nano)},
		{"before retention", "/export/cam.ts?from=" + rfc(first.Add(-48*time.Hour)) + "&to=" + rfc(first.Add(-time.Hour)), auth,
			http.StatusRequestedRangeNotSatisfiable, last.UTC().Format(time.RFC3339Nano)},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+c.path, c.header)
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.body) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, c.code, c.body)
			}
		})
	}
	t.Run("days of range", func(t *testing.T) {
		// Bounded by retention: the whole stream.
		resp, body := get(t, srv.URL+"/export/cam.ts?from=-72h", auth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if got := len(tstest.Demux(t, body).Kind(tsframes.KindVideo)); got != len(s.video) {
			t.Errorf("%d video frames, want all %d", got, len(s.video))
		}
	})
	t.Run("post", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/export/cam.ts?from=-1h", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
}

func TestExportsBeyondMaxAreRefused(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	ingest(t, nc, "cam", "av.ts")
	h, srv := exportServer(t, nc, Config{MaxExports: 2}, nil)
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	resp, body := get(t, srv.URL+"/export/cam.ts?from=-1h", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("status %d Retry-After %q: %s; want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	<-h.slots
	if resp, body := get(t, srv.URL+"/export/cam.ts?from=-1h", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("with a free slot: status %d: %s", resp.StatusCode, body)
	}
}

func TestExportEndsAtEpochChange(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "cam", "av.ts", "av.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	var second int // index in s.video of the second epoch's first frame
	for second = range s.video {
		if s.video[second].Epoch != s.video[0].Epoch {
			break
		}
	}
	if second == 0 || second == len(s.video)-1 {
		t.Fatal("the bus holds one epoch")
	}
	for _, c := range []struct {
		name  string
		from  time.Time
		end   string
		epoch uint64
	}{
		{"across the change", s.video[0].Published, "epoch", s.video[0].Epoch},
		{"in the second epoch", s.video[second].Published, "range", s.video[second].Epoch},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/export/cam.ts?from="+rfc(c.from), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if end := resp.Trailer.Get(TrailerEnd); end != c.end {
				t.Errorf("%s trailer %q, want %q", TrailerEnd, end, c.end)
			}
			var want []tsframes.Frame
			for _, m := range s.video {
				if m.Epoch == c.epoch {
					want = append(want, m.Frame)
				}
			}
			got := tstest.Demux(t, body).Kind(tsframes.KindVideo)
			if len(got) != len(want) {
				t.Fatalf("%d video frames, want the %d of the epoch", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i].Data, want[i].Data) {
					t.Fatalf("video frame %d differs", i)
				}
			}
		})
	}
}

func TestExportTSAcrossTheTimestampWrap(t *testing.T) {
	nc := natstest.EmbeddedConn(t)
	s := ingest(t, nc, "wrap", "wrap.ts")
	_, srv := exportServer(t, nc, Config{}, nil)
	resp, body := get(t, srv.URL+"/export/wrap.ts?from=-1h", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want, got := kind(s.frames, tsframes.KindVideo), tstest.Demux(t, body).Kind(tsframes.KindVideo)
	if want[len(want)-1].PTS < 1<<33 {
		t.Fatal("the fixture does not cross 2^33")
	}
	if len(got) != len(want) {
		t.Fatalf("%d video frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].PTS != want[i].PTS || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("video frame %d: pts %d, want %d (or its data differs)", i, got[i].PTS, want[i].PTS)
		}
	}
}
