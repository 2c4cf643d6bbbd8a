package whep

import (
	"fmt"
	"net"
	"net/http"

	"github.com/whepcast/whepcast/pkg/bearer"
)

// adminAuth authorizes the operator endpoints that list session ids (GET
// /sessions). A session id is all a client needs to end a session, so they
// are never listed to a stranger: with Config.AdminTokens the request needs
// one as "Authorization: Bearer TOKEN"; without, only a loopback client is
// served (and it needs a viewer token when Config.Tokens are set).
type adminAuth struct {
	admin  bearer.Set
	viewer tokens
}

func newAdminAuth(admin []string, viewer tokens) adminAuth {
	return adminAuth{admin: bearer.NewSet(admin...), viewer: viewer}
}

// check returns an error wrapping errUnauthorized unless r may see the
// session ids.
func (a adminAuth) check(r *http.Request) error {
	if a.admin.Open() {
		if !fromLoopback(r) {
			return fmt.Errorf("%w: session ids are listed to loopback clients only unless an admin token is set", errUnauthorized)
		}
		return a.viewer.check(r)
	}
	got := bearer.FromHeader(r)
	if got == "" {
		return fmt.Errorf("%w: an admin token is needed", errUnauthorized)
	}
	if !a.admin.Accepts(got) {
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
