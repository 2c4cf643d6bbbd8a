package whep

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// tokens is the set of accepted bearer tokens; empty means open access.
type tokens [][]byte

// loadTokens merges the configured tokens and those of file (one a line;
// blank lines and lines starting with # are skipped).
func loadTokens(list []string, file string) (tokens, error) {
	var t tokens
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			t = append(t, []byte(s))
		}
	}
	if file == "" {
		return t, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: token file: %w", ErrInvalidConfig, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t = append(t, []byte(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: token file %s: %w", ErrInvalidConfig, file, err)
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("%w: token file %s holds no token", ErrInvalidConfig, file)
	}
	return t, nil
}

// check returns errUnauthorized unless access is open or r carries an
// accepted token as "Authorization: Bearer TOKEN" or as ?token=TOKEN.
func (t tokens) check(r *http.Request) error {
	if len(t) == 0 {
		return nil
	}
	var got string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			got = strings.TrimSpace(cred)
		}
	}
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	if got == "" {
		return fmt.Errorf("%w: none given", errUnauthorized)
	}
	match := 0
	for _, want := range t {
		match |= subtle.ConstantTimeCompare([]byte(got), want)
	}
	if match != 1 {
		return errUnauthorized
	}
	return nil
}
