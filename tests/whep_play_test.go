package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/pkg/config"
)

const (
	mimeH264 = webrtc.MimeTypeH264
	mimeOpus = webrtc.MimeTypeOpus
)

// TestWHEPPostHeldUntilAnnounced POSTs before the ingest starts: the answer
// comes only once the publisher has announced the stream, and then plays.
func TestWHEPPostHeldUntilAnnounced(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), nil)

	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	offer := c.offer(t)
	type answer struct {
		resp *http.Response
		body string
		at   time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body := whepPost(t, ctx, url+"/whep/late", offer)
		answered <- answer{resp, body, time.Now()}
	}()
	whepWait(t, ctx, "one held POST", func() bool { return whepMetric(t, url, "whepcast_whep_held_requests") == 1 })
	select {
	case a := <-answered:
		t.Fatalf("answered before the stream exists: %d %q", a.resp.StatusCode, a.body)
	default:
	}

	p := whepPublish(t, connect(), "late", "av.ts")
	var announcedAt time.Time
	select {
	case <-p.announced:
		announcedAt = time.Now()
	case <-ctx.Done():
		t.Fatal("publisher never announced")
	}
	var a answer
	select {
	case a = <-answered:
	case <-ctx.Done():
		t.Fatal("POST not answered after the announcement")
	}
	if a.resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %q", a.resp.StatusCode, a.body)
	}
	if a.at.Before(announcedAt.Add(-50 * time.Millisecond)) {
		t.Fatalf("answered at %v, before the announcement at %v", a.at, announcedAt)
	}
	if got := whepMetric(t, url, "whepcast_whep_held_requests"); got != 0 {
		t.Fatalf("held requests = %v after the answer", got)
	}
	// sendonly, one msid stream for both tracks.
	if strings.Count(a.body, "a=msid:late ") != 2 || strings.Count(a.body, "a=sendonly") != 2 {
		t.Fatalf("answer:\n%s", a.body)
	}
	c.answer(t, a.body)
	c.waitPackets(t, ctx, mimeH264, 50)
	c.waitPackets(t, ctx, mimeOpus, 20)
	if got := whepMetric(t, url, `whepcast_whep_time_to_first_frame_seconds_count{stream="late"}`); got != 1 {
		t.Fatalf("time to first frame samples = %v", got)
	}
	if got := whepMetric(t, url, `whepcast_whep_packets_out_total{kind="video",stream="late"}`); got < 50 {
		t.Fatalf("packets out = %v", got)
	}
	// /sessions lists it, connected.
	resp, body := whepDo(t, ctx, http.MethodGet, url+"/sessions", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"stream": "late"`) || !strings.Contains(body, `"state": "connected"`) {
		t.Fatalf("/sessions = %d %s", resp.StatusCode, body)
	}
	resp, body = whepDo(t, ctx, http.MethodDelete, url+a.resp.Header.Get("Location"), nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE = %d %q", resp.StatusCode, body)
	}
	if got := whepMetric(t, url, "whepcast_whep_sessions"); got != 0 {
		t.Fatalf("sessions = %v after DELETE", got)
	}
}

// TestWHEPWaitTimeout answers 409 with Retry-After when the stream does not
// go live in time.
func TestWHEPWaitTimeout(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), func(c *config.WHEP) { c.WaitTimeout = 300 * time.Millisecond })
	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo)
	start := time.Now()
	resp, body := whepPost(t, ctx, url+"/whep/never", c.offer(t))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("answered after %v, want the 300ms wait timeout", d)
	}
	if got := whepMetric(t, url, "whepcast_whep_held_requests"); got != 0 {
		t.Fatalf("held requests = %v", got)
	}
}

// TestWHEPClientGivesUp cancels a held POST: the hold is released at once.
func TestWHEPClientGivesUp(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), nil) // 20 s wait timeout
	c := newWHEPClient(t, webrtc.RTPCodecTypeVideo)
	offer := c.offer(t)
	reqCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodPost, url+"/whep/never", strings.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("held POST answered %d", resp.StatusCode)
		}
	}()
	whepWait(t, ctx, "one held POST", func() bool { return whepMetric(t, url, "whepcast_whep_held_requests") == 1 })
	cancel()
	<-done
	gone := time.Now()
	whepWait(t, ctx, "the hold released", func() bool { return whepMetric(t, url, "whepcast_whep_held_requests") == 0 })
	if d := time.Since(gone); d > time.Second {
		t.Fatalf("hold released %v after the client left", d)
	}
}

// whepPlay POSTs c's offer for stream and connects.
func whepPlay(t *testing.T, ctx context.Context, url, stream string, c *whepClient) (*http.Response, string) {
	t.Helper()
	resp, body := whepPost(t, ctx, url+"/whep/"+stream, c.offer(t))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s = %d %q", stream, resp.StatusCode, body)
	}
	c.answer(t, body)
	select {
	case <-c.connected:
	case <-c.closed:
		t.Fatal("connection failed")
	case <-ctx.Done():
		t.Fatal("not connected")
	}
	return resp, body
}

// unused reports whether an answer's section sends nothing: rejected (port
// 0) or inactive, without a source.
func unused(section string) bool {
	return (strings.HasPrefix(section, "m=audio 0 ") || strings.HasPrefix(section, "m=video 0 ") ||
		strings.Contains(section, "a=inactive")) && !strings.Contains(section, "a=ssrc:") && !strings.Contains(section, "a=candidate:")
}

// mediaSection returns the m= section of kind in an SDP, "" when none.
func mediaSection(sdp, kind string) string {
	i := strings.Index(sdp, "m="+kind+" ")
	if i < 0 {
		return ""
	}
	rest := sdp[i+2:]
	if j := strings.Index(rest, "\r\nm="); j >= 0 {
		return sdp[i : i+2+j]
	}
	return sdp[i:]
}

func TestWHEPTracks(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), whepTestTimeout)
	defer cancel()
	connect := whepBus(t)
	url := whepNode(t, connect(), nil)
	for _, f := range []struct{ stream, file string }{{"audioonly", "audio.ts"}, {"videoonly", "video.ts"}, {"aac", "aac.ts"}} {
		p := whepPublish(t, connect(), f.stream, f.file)
		select {
		case <-p.announced:
		case <-ctx.Done():
			t.Fatalf("%s not announced", f.file)
		}
	}

	t.Run("audio only", func(t *testing.T) {
		c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
		_, answer := whepPlay(t, ctx, url, "audioonly", c)
		if v := mediaSection(answer, "video"); !unused(v) {
			t.Fatalf("video section not rejected or inactive:\n%s", v)
		}
		if a := mediaSection(answer, "audio"); !strings.Contains(a, "a=sendonly") || !strings.Contains(a, "opus/48000/2") ||
			!strings.Contains(a, "a=candidate:") {
			t.Fatalf("audio section:\n%s", a)
		}
		c.waitPackets(t, ctx, mimeOpus, 25)
		if got := c.trackMIMEs(); len(got) != 1 || !got[mimeOpus] {
			t.Fatalf("tracks = %v", got)
		}
	})
	t.Run("video only", func(t *testing.T) {
		c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
		_, answer := whepPlay(t, ctx, url, "videoonly", c)
		if a := mediaSection(answer, "audio"); !unused(a) {
			t.Fatalf("audio section not rejected or inactive:\n%s", a)
		}
		c.waitPackets(t, ctx, mimeH264, 30)
		if got := c.trackMIMEs(); len(got) != 1 || !got[mimeH264] {
			t.Fatalf("tracks = %v", got)
		}
	})
	t.Run("H.264+AAC plays video", func(t *testing.T) {
		c := newWHEPClient(t, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
		_, answer := whepPlay(t, ctx, url, "aac", c)
		if a := mediaSection(answer, "audio"); !unused(a) {
			t.Fatalf("audio section not rejected or inactive:\n%s", a)
		}
		c.waitPackets(t, ctx, mimeH264, 30)
		if got := c.trackMIMEs(); len(got) != 1 || !got[mimeH264] {
			t.Fatalf("tracks = %v", got)
		}
	})
	t.Run("H.264+AAC audio offer is 422", func(t *testing.T) {
		c := newWHEPClient(t, webrtc.RTPCodecTypeAudio)
		resp, body := whepPost(t, ctx, url+"/whep/aac", c.offer(t))
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "audio is AAC, which WebRTC cannot carry") {
			t.Fatalf("POST = %d %q", resp.StatusCode, body)
		}
	})
	t.Run("video offer on audio-only is 422", func(t *testing.T) {
		c := newWHEPClient(t, webrtc.RTPCodecTypeVideo)
		resp, body := whepPost(t, ctx, url+"/whep/audioonly", c.offer(t))
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "the stream has no video") {
			t.Fatalf("POST = %d %q", resp.StatusCode, body)
		}
	})
}
