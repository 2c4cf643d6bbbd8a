package player

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
)

// fixedViewers is a ViewerCounter with set totals.
type fixedViewers struct {
	t   ViewerTotals
	err error
}

func (f fixedViewers) ViewerCounts(context.Context) (ViewerTotals, error) { return f.t, f.err }

// fixedRetention is a Retention with set oldest times.
type fixedRetention map[string]time.Time

func (f fixedRetention) Oldest(_ context.Context, stream string) (time.Time, error) {
	if t, ok := f[stream]; ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("no keyframe: %w", bus.ErrNotFound)
}

// listFixture: demo (SRT, 8 Mb over 4 s since t0, 5 viewers on 2 nodes,
// 90 s of DVR) and cam (errors counted, no DVR, no viewer), seen at now.
func listFixture() (*fakeLister, Options, time.Time) {
	demo := avEntry("demo")
	demo.Started, demo.Updated = t0, t0.Add(4*time.Second)
	demo.Stats.Bytes, demo.Stats.Protocol, demo.Stats.Publisher = 1_000_000, "srt", "192.0.2.7:51234"
	cam := aacEntry("cam")
	cam.Stats.DecodeErrors, cam.Stats.PublishErrs = 3, 1
	now := t0.Add(5 * time.Second)
	opts := Options{
		Viewers:   fixedViewers{t: ViewerTotals{Streams: map[string]int{"demo": 5}, Nodes: 2, At: now}},
		Retention: fixedRetention{"demo": now.Add(-90 * time.Second)},
	}
	return newFakeLister(demo, cam), opts, now
}

func TestStreamListFields(t *testing.T) {
	streams, opts, now := listFixture()
	h := newHandler(streams, nil, opts, func() time.Time { return now })
	rec := get(t, h, "GET", "/streams")
	var got []StreamView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	if len(got) != 2 || got[0].Stream != "demo" || got[1].Stream != "cam" {
		t.Fatalf("streams %+v", got)
	}
	demo, cam := got[0], got[1]
	if demo.Protocol != "srt" || demo.Bitrate != 2_000_000 || demo.Health != "ok" || demo.HealthNote != "" {
		t.Errorf("demo: protocol %q bitrate %d health %q %q; want srt, 2000000 (8 Mb in 4 s), ok", demo.Protocol, demo.Bitrate, demo.Health, demo.HealthNote)
	}
	if demo.Viewers == nil || *demo.Viewers != 5 || demo.ViewerNodes != 2 {
		t.Errorf("demo viewers %v on %d nodes, want 5 on 2", demo.Viewers, demo.ViewerNodes)
	}
	if demo.DVRFrom == nil || !demo.DVRFrom.Equal(now.Add(-90*time.Second)) || demo.DVRSeconds != 90 || !demo.Now.Equal(now) {
		t.Errorf("demo DVR from %v, %v s at %v; want 90 s before %v", demo.DVRFrom, demo.DVRSeconds, demo.Now, now)
	}
	if cam.Viewers == nil || *cam.Viewers != 0 || cam.DVRFrom != nil || cam.DVRSeconds != 0 || cam.Protocol != "" {
		t.Errorf("cam: viewers %v, DVR %v %v, protocol %q; want 0 viewers, no DVR, no protocol", cam.Viewers, cam.DVRFrom, cam.DVRSeconds, cam.Protocol)
	}
	if cam.Health != "errors" || cam.HealthNote != "3 decode errors, 1 publish errors since the start" {
		t.Errorf("cam health %q %q", cam.Health, cam.HealthNote)
	}
	body := rec.Body.String()
	for _, s := range []string{`"viewers":5,"viewer_nodes":2`, `"dvr_seconds":90`, `"protocol":"srt"`, `"bitrate":2000000`} {
		if !strings.Contains(body, s) {
			t.Errorf("JSON lacks %s: %s", s, body)
		}
	}
	if strings.Contains(body, "192.0.2.7") {
		t.Errorf("the publisher's address is listed to viewers: %s", body)
	}
	if strings.Contains(body, "thumbnail") {
		t.Errorf("a thumbnail is listed, but none exists: %s", body)
	}

	page := get(t, h, "GET", "/").Body.String()
	for _, s := range []string{
		`<span class="protocol">srt</span>`, `<span class="bitrate">2.0 Mb/s</span>`, `<span class="health ok">ok</span>`,
		`<span class="viewers">5 watching</span>`, `<span class="dvr">1 min back</span>`,
		`<span class="health errors" title="3 decode errors, 1 publish errors since the start">errors</span>`,
		`<span class="viewers">0 watching</span>`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %s:\n%s", s, page)
		}
	}
}

// TestStreamListWithoutSources: no counter, no retention (or failing ones):
// no viewers and no DVR fields, and the list still answers.
func TestStreamListWithoutSources(t *testing.T) {
	streams, _, now := listFixture()
	for name, opts := range map[string]Options{
		"none":    {},
		"failing": {Viewers: fixedViewers{err: errors.New("down")}, Retention: fixedRetention{}},
		"no node": {Viewers: fixedViewers{t: ViewerTotals{Streams: map[string]int{}}}},
	} {
		h := newHandler(streams, nil, opts, func() time.Time { return now })
		rec := get(t, h, "GET", "/streams")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", name, rec.Code)
		}
		for _, s := range []string{`"viewers"`, `"dvr_from"`, `"dvr_seconds"`} {
			if strings.Contains(rec.Body.String(), s) {
				t.Errorf("%s: %s listed: %s", name, s, rec.Body.String())
			}
		}
		if page := get(t, h, "GET", "/").Body.String(); strings.Contains(page, "watching") || strings.Contains(page, " back</span>") {
			t.Errorf("%s: page shows viewers or DVR:\n%s", name, page)
		}
	}
}

// TestStreamStale: a live entry not refreshed for StaleAfter is stale.
func TestStreamStale(t *testing.T) {
	e := avEntry("demo")
	v := viewOf(e, e.Updated.Add(StaleAfter+time.Second))
	if v.Health != "stale" || v.HealthNote != "no update from the broker for 7s" {
		t.Fatalf("health %q %q, want stale", v.Health, v.HealthNote)
	}
	if v := viewOf(e, e.Updated.Add(StaleAfter)); v.Health != "ok" {
		t.Fatalf("at StaleAfter: health %q, want ok", v.Health)
	}
}

// TestStreamEndpoint: GET /streams/{stream} is one live stream's view (the
// player's timeline), 404 for an unknown stream or a bad name.
func TestStreamEndpoint(t *testing.T) {
	streams, opts, now := listFixture()
	h := newHandler(streams, nil, opts, func() time.Time { return now })
	rec := get(t, h, "GET", "/streams/demo")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	var v StreamView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Stream != "demo" || v.DVRSeconds != 90 || v.Viewers == nil || *v.Viewers != 5 || !v.Now.Equal(now) {
		t.Fatalf("view %+v", v)
	}
	for target, want := range map[string]string{
		"/streams/gone":    "stream gone is not live\n",
		"/streams/bad.one": "invalid stream name\n",
	} {
		rec := get(t, h, "GET", target)
		if rec.Code != http.StatusNotFound || rec.Body.String() != want {
			t.Errorf("GET %s: %d %q, want 404 %q", target, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for bps, want := range map[int64]string{0: "0 b/s", 999: "999 b/s", 850_000: "850 kb/s", 6_240_000: "6.2 Mb/s"} {
		if got := formatBitrate(bps); got != want {
			t.Errorf("formatBitrate(%d) = %q, want %q", bps, got, want)
		}
	}
	for s, want := range map[float64]string{0: "0 s", 59.9: "59 s", 60: "1 min", 3599: "59 min", 7500: "2 h 05 min"} {
		if got := formatSeconds(s); got != want {
			t.Errorf("formatSeconds(%v) = %q, want %q", s, got, want)
		}
	}
}
