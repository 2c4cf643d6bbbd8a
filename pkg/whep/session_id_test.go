package whep

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestSessionID(t *testing.T) {
	re := regexp.MustCompile(`^node-1\.[a-z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newSessionID("node-1")
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("id %q (dup %v)", id, seen[id])
		}
		seen[id] = true
		if node, ok := sessionNode(id); !ok || node != "node-1" {
			t.Fatalf("sessionNode(%q) = %q %v", id, node, ok)
		}
	}
	for _, bad := range []string{"", "node", "node.", ".aaaaaaaaaaaaaaaaaaaaaaaaaa", "no de.aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"node.aaaaaaaaaaaaaaaaaaaaaaaaa", "node.AAAAAAAAAAAAAAAAAAAAAAAAAA", "node.aaaaaaaaaaaaaaaaaaaaaaaaa1", "a.b.aaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		if _, ok := sessionNode(bad); ok {
			t.Errorf("sessionNode(%q) ok", bad)
		}
	}
}

func TestIfMatch(t *testing.T) {
	const etag = `"0123456789abcdef"`
	cases := []struct {
		values         []string
		present, match bool
	}{
		{nil, false, false},
		{[]string{""}, false, false},
		{[]string{etag}, true, true},
		{[]string{"*"}, true, true},
		{[]string{`"x", ` + etag}, true, true},
		{[]string{`"x"`, etag}, true, true},
		{[]string{`"x"`}, true, false},
		{[]string{"W/" + etag}, true, false},
		{[]string{`0123456789abcdef`}, true, false},
	}
	for _, c := range cases {
		p, m := ifMatch(c.values, etag)
		if p != c.present || m != c.match {
			t.Errorf("ifMatch(%q) = %v %v, want %v %v", c.values, p, m, c.present, c.match)
		}
	}
}

func TestTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# viewers\n  filetok  \n\nsecond\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := loadTokens([]string{"listtok"}, file)
	if err != nil {
		t.Fatal(err)
	}
	req := func(auth, query string) *http.Request {
		r, _ := http.NewRequest("POST", "http://x/whep/s"+query, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	for _, ok := range []*http.Request{req("Bearer listtok", ""), req("bearer filetok", ""), req("Bearer  second ", ""),
		req("", "?token=second"), req("Basic x", "?token=listtok")} {
		if err := tok.check(ok); err != nil {
			t.Errorf("check(%v %v) = %v", ok.Header, ok.URL, err)
		}
	}
	for _, bad := range []*http.Request{req("", ""), req("Bearer nope", ""), req("Bearer # viewers", ""), req("Bearer", ""),
		req("listtok", ""), req("", "?token=nope")} {
		if err := tok.check(bad); err == nil {
			t.Errorf("check(%v %v) accepted", bad.Header, bad.URL)
		}
	}
	if err := (tokens{}).check(req("", "")); err != nil {
		t.Errorf("open access refused: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := loadTokens(nil, empty); err == nil {
		t.Error("empty token file accepted")
	}
}
