package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestSetAccepts(t *testing.T) {
	open := NewSet()
	closed := NewSet("s3cret", "  other ", "")
	cases := []struct {
		name  string
		set   Set
		token string
		want  bool
	}{
		{"open set, no token", open, "", true},
		{"open set, any token", open, "x", true},
		{"closed set, first token", closed, "s3cret", true},
		{"closed set, trimmed token", closed, "other", true},
		{"closed set, token with spaces", closed, " s3cret ", true},
		{"closed set, empty token", closed, "", false},
		{"closed set, wrong token", closed, "s3cre", false},
		{"closed set, longer token", closed, "s3crets", false},
	}
	for _, c := range cases {
		if got := c.set.Accepts(c.token); got != c.want {
			t.Errorf("%s: Accepts(%q) = %v, want %v", c.name, c.token, got, c.want)
		}
	}
	if !open.Open() || closed.Open() || closed.Len() != 2 {
		t.Errorf("Open/Len: open %v, closed %v with %d tokens; want true, false, 2", open.Open(), closed.Open(), closed.Len())
	}
}

func TestFromHeader(t *testing.T) {
	cases := map[string]string{
		"":                "",
		"Bearer abc":      "abc",
		"bearer  abc ":    "abc",
		"BEARER abc":      "abc",
		"Basic dXNlcjpw":  "",
		"Bearer":          "",
		"Bearerabc":       "",
		"Bearer a b":      "a b",
		"Token abc extra": "",
	}
	for header, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if got := FromHeader(r); got != want {
			t.Errorf("Authorization %q: FromHeader = %q, want %q", header, got, want)
		}
	}
}
