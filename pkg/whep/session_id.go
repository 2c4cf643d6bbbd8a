package whep

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// sessionIDBytes is the randomness of a session id: 128 bits.
const sessionIDBytes = 16

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newSessionID returns NODE.RANDOM, RANDOM being 128 bits from crypto/rand
// in 26 lower-case base32 characters.
func newSessionID(node string) string {
	var b [sessionIDBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return node + "." + idEncoding.EncodeToString(b[:])
}

// sessionNode returns the node id of a session id, and false when id is not
// NODE.RANDOM with a valid node id and 26 base32 characters.
func sessionNode(id string) (string, bool) {
	node, random, ok := strings.Cut(id, ".")
	if !ok || !validNodeID(node) || len(random) != idEncoding.EncodedLen(sessionIDBytes) {
		return "", false
	}
	if _, err := idEncoding.DecodeString(random); err != nil {
		return "", false
	}
	return node, true
}

func validNodeID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newETag returns a strong entity tag: 64 random bits, quoted.
func newETag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return `"` + hex.EncodeToString(b[:]) + `"`
}

// ifMatch evaluates an If-Match header value against the current etag:
// present is false when there is no header; match is true for "*" or when
// the list holds etag (strong comparison: weak tags never match).
func ifMatch(values []string, etag string) (present, match bool) {
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "" {
				continue
			}
			present = true
			if tag == "*" || tag == etag {
				match = true
			}
		}
	}
	return present, match
}
