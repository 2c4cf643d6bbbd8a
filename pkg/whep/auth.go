package whep

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/whepcast/whepcast/pkg/bearer"
)

// tokens is the set of accepted bearer tokens; empty means open access.
type tokens struct{ bearer.Set }

// loadTokens merges the configured tokens and those of file (one a line;
// blank lines and lines starting with # are skipped).
func loadTokens(list []string, file string) (tokens, error) {
	if file == "" {
		return tokens{bearer.NewSet(list...)}, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return tokens{}, fmt.Errorf("%w: token file: %w", ErrInvalidConfig, err)
	}
	var fromFile []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fromFile = append(fromFile, line)
	}
	if err := sc.Err(); err != nil {
		return tokens{}, fmt.Errorf("%w: token file %s: %w", ErrInvalidConfig, file, err)
	}
	if len(fromFile) == 0 {
		return tokens{}, fmt.Errorf("%w: token file %s holds no token", ErrInvalidConfig, file)
	}
	return tokens{bearer.NewSet(append(list, fromFile...)...)}, nil
}

// check returns errUnauthorized unless access is open or r carries an
// accepted token as "Authorization: Bearer TOKEN" or as ?token=TOKEN.
func (t tokens) check(r *http.Request) error { return t.checkCredential(credential(r)) }

// credential returns the token r carries ("Authorization: Bearer TOKEN",
// else ?token=TOKEN), or "". A request forwarded to the node owning its
// session carries it there, to be checked by that node's tokens.
func credential(r *http.Request) string {
	if got := bearer.FromHeader(r); got != "" {
		return got
	}
	return strings.TrimSpace(r.URL.Query().Get("token"))
}

// checkCredential is check on the token got (from credential).
func (t tokens) checkCredential(got string) error {
	if t.Open() {
		return nil
	}
	if got == "" {
		return fmt.Errorf("%w: none given", errUnauthorized)
	}
	if !t.Accepts(got) {
		return errUnauthorized
	}
	return nil
}
