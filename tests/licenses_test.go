package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestLicensesListed keeps docs/licenses.md true to go.mod: every module
// whepcast requires directly is listed with a licence, and every listed
// module is one that go.mod knows (a removed dependency leaves the list).
func TestLicensesListed(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/licenses.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{} // every module of go.mod: direct or not
	var direct []string
	inRequire := false
	for _, line := range strings.Split(string(mod), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "require ("):
			inRequire = true
			continue
		case inRequire && line == ")":
			inRequire = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inRequire:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		known[fields[0]] = true
		if !strings.Contains(line, "// indirect") {
			direct = append(direct, fields[0])
		}
	}
	if len(direct) == 0 {
		t.Fatal("no direct requirement found in go.mod")
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| ([^|]+) \\| (Apache-2.0|MIT|BSD-[23]-Clause|MIT and Apache-2.0)( \\(test\\))? \\|$")
	listed := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = true
		if !known[m[1]] {
			t.Errorf("docs/licenses.md lists %s, which go.mod does not require", m[1])
		}
	}
	for _, m := range direct {
		if !listed[m] {
			t.Errorf("go.mod requires %s: list it with its licence in docs/licenses.md", m)
		}
	}
}
