// Package bearer checks the bearer tokens that guard whepcast's ingest and
// playback (RFC 6750: "Authorization: Bearer TOKEN"). A Set holds the
// accepted tokens; an empty Set is open access. Tokens are compared in
// constant time over their SHA-256 hashes, so neither a token's content nor
// its length leaks through timing.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Set is a set of accepted tokens. The zero Set accepts every request.
type Set struct {
	hashes [][sha256.Size]byte
}

// NewSet returns the set of tokens, blank ones (after trimming spaces) left
// out.
func NewSet(tokens ...string) Set {
	var s Set
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			s.hashes = append(s.hashes, sha256.Sum256([]byte(t)))
		}
	}
	return s
}

// Open tells whether s holds no token: access is open.
func (s Set) Open() bool { return len(s.hashes) == 0 }

// Len is the number of tokens in s.
func (s Set) Len() int { return len(s.hashes) }

// Accepts tells whether token is one of s's. An open set accepts any token;
// a closed one never accepts the empty token.
func (s Set) Accepts(token string) bool {
	if s.Open() {
		return true
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return false
	}
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, want := range s.hashes {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

// FromHeader returns the token of r's "Authorization: Bearer TOKEN" header
// (the scheme in any case), or "" when there is none.
func FromHeader(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
