package whep

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAdminAuth(t *testing.T) {
	viewer, err := loadTokens([]string{"v1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		admin  []string
		viewer tokens
		remote string
		auth   string
		query  string
		ok     bool
	}{
		{name: "no admin token, loopback", remote: "127.0.0.1:5000", ok: true},
		{name: "no admin token, loopback v6", remote: "[::1]:5000", ok: true},
		{name: "no admin token, remote", remote: "203.0.113.7:5000"},
		{name: "no admin token, remote with a viewer token", viewer: viewer, remote: "203.0.113.7:5000", auth: "Bearer v1"},
		{name: "no admin token, loopback needs the viewer token", viewer: viewer, remote: "127.0.0.1:5000"},
		{name: "no admin token, loopback with the viewer token", viewer: viewer, remote: "127.0.0.1:5000", auth: "Bearer v1", ok: true},
		{name: "admin token, remote", admin: []string{"a1", "a2"}, remote: "203.0.113.7:5000", auth: "Bearer a2", ok: true},
		{name: "admin token, loopback without it", admin: []string{"a1"}, remote: "127.0.0.1:5000"},
		{name: "admin token, wrong one", admin: []string{"a1"}, remote: "203.0.113.7:5000", auth: "Bearer a2"},
		{name: "admin token, a viewer token", admin: []string{"a1"}, viewer: viewer, remote: "203.0.113.7:5000", auth: "Bearer v1"},
		{name: "admin token, in the query", admin: []string{"a1"}, remote: "203.0.113.7:5000", query: "?token=a1"},
		{name: "admin token, basic scheme", admin: []string{"a1"}, remote: "203.0.113.7:5000", auth: "Basic a1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/sessions"+c.query, nil)
			r.RemoteAddr = c.remote
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			err := newAdminAuth(c.admin, c.viewer).check(r)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok {
				if status, _ := statusOf(err); !errors.Is(err, errUnauthorized) || status != http.StatusUnauthorized {
					t.Fatalf("err = %v (status %d), want 401", err, status)
				}
			}
		})
	}
}
