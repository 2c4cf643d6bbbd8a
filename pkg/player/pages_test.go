package player

import (
	"regexp"
	"strings"
	"testing"
)

var inlineHandler = regexp.MustCompile(`\son[a-z]+=`)

func TestPagesHaveNoInlineScript(t *testing.T) {
	h := Handler(newFakeLister(avEntry("demo")), nil)
	for _, target := range []string{"/", "/play/demo"} {
		body := get(t, h, "GET", target).Body.String()
		if n := strings.Count(body, "<script"); n != 1 {
			t.Errorf("%s: %d script elements, want 1", target, n)
		}
		if strings.Contains(body, "<script>") || inlineHandler.MatchString(body) {
			t.Errorf("%s has inline script:\n%s", target, body)
		}
	}
}

func TestIndexEscapesNames(t *testing.T) {
	evil := avEntry(`<script>alert("x")</script>`)
	evil.Tracks.Tracks[0].ProfileLevelID = `"><img src=x onerror=alert(1)>`
	h := Handler(newFakeLister(evil), nil)
	body := get(t, h, "GET", "/").Body.String()
	for _, bad := range []string{`<script>alert`, `<img src=x`, `href="play/`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q:\n%s", bad, body)
		}
	}
	for _, good := range []string{`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, `&lt;img src=x onerror=alert(1)&gt;`} {
		if !strings.Contains(body, good) {
			t.Errorf("page lacks escaped %q:\n%s", good, body)
		}
	}
	// The JSON list escapes too (encoding/json escapes < and >).
	list := get(t, h, "GET", "/streams").Body.String()
	if strings.Contains(list, "<script>") || !strings.Contains(list, `\u003cscript\u003e`) {
		t.Errorf("JSON list %s", list)
	}
}

func TestNilListerAndLogger(t *testing.T) {
	h := Handler(nil, nil)
	rec := get(t, h, "GET", "/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "No live stream") {
		t.Errorf("status %d body %q", rec.Code, rec.Body.String())
	}
	if rec := get(t, h, "GET", "/streams"); rec.Body.String() != "[]" {
		t.Errorf("/streams = %q, want []", rec.Body.String())
	}
}
