package whep

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// adminAuth authorizes the operator endpoints that list session ids (GET
// /sessions). A session id is all a client needs to end a session, so they
// are never listed to a stranger: with Config.AdminTokens the request needs
// one as "Authorization: Bearer TOKEN"; without, only a loopback client is
// served (and it needs a viewer token when Config.Tokens are set).
type adminAuth struct {
	admin  [][]byte
	viewer tokens
}

func newAdminAuth(admin []string, viewer tokens) adminAuth {
	a := adminAuth{viewer: viewer}
	for _, t := range admin {
		if t = strings.TrimSpace(t); t != "" {
			a.admin = append(a.admin, []byte(t))
		}
	}
	return a
}

// check returns an error wrapping errUnauthorized unless r may see the
// session ids.
func (a adminAuth) check(r *http.Request) error {
	if len(a.admin) == 0 {
		if !fromLoopback(r) {
			return fmt.Errorf("%w: session ids are listed to loopback clients only unless an admin token is set", errUnauthorized)
		}
		return a.viewer.check(r)
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(got) == "" {
		return fmt.Errorf("%w: an admin token is needed", errUnauthorized)
	}
	match := 0
	for _, want := range a.admin {
		match |= subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want)
	}
	if match != 1 {
		return fmt.Errorf("%w: not an admin token", errUnauthorized)
	}
	return nil
}

// fromLoopback tells whether r comes from a loopback address.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
