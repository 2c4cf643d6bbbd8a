package bus

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// mdTables returns the rows of the tables of a Markdown document by the
// "## " section they are in, without their header and separator rows.
func mdTables(doc string) map[string][][]string {
	tables := map[string][][]string{}
	section, inTable := "", false
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		if s, ok := strings.CutPrefix(line, "## "); ok {
			section = s
		}
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if !inTable { // the header row
			inTable = true
			continue
		}
		if strings.HasPrefix(line, "|-") || strings.HasPrefix(line, "| -") {
			continue
		}
		var cells []string
		for c := range strings.SplitSeq(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		tables[section] = append(tables[section], cells)
	}
	return tables
}

// code returns the first `quoted` word of a Markdown table cell.
func code(cell string) string {
	_, rest, ok := strings.Cut(cell, "`")
	if !ok {
		return ""
	}
	c, _, _ := strings.Cut(rest, "`")
	return c
}

// wireHeaderConsts returns the string constants of the package whose value
// is a Whepcast- header name, by constant name.
func wireHeaderConsts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "Whepcast-") {
						consts[vs.Names[i].Name] = s
					}
				}
			}
		}
	}
	return consts
}

// TestDocsMatchCode: docs/bus.md, the only description of the wire format,
// lists exactly the headers and subjects the code writes and reads.
func TestDocsMatchCode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "bus.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	tables := mdTables(doc)

	// Headers: the Whepcast- header constants, and the announcement's
	// JetStream headers with their values.
	consts := wireHeaderConsts(t)
	if len(consts) < 10 || consts["HeaderEpoch"] != HeaderEpoch || consts["HeaderDurs"] != HeaderDurs {
		t.Fatalf("header constants found in the source: %v", consts)
	}
	want := map[string]string{}
	for _, h := range consts {
		want[h] = ""
	}
	ann := newEncoder(mustSubjects("NAME"), 1).announcement(nil)
	for h, v := range ann.Header {
		if h != HeaderEpoch {
			want[h] = v[0]
		}
	}
	got := map[string]string{}
	for _, row := range tables["Messages"] {
		h := code(row[0])
		if _, dup := got[h]; dup || len(row) != 3 {
			t.Errorf("docs/bus.md, Messages: row %q repeated or not of 3 columns", row)
		}
		got[h] = ""
		if !strings.HasPrefix(h, "Whepcast-") {
			got[h] = code(row[2])
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("docs/bus.md, Messages: headers (and values) %v\nthe code has %v", got, want)
	}

	// Subjects: every subject of Subjects but the wildcard, in the
	// Layout table; the stream and the wildcard in its text.
	s := mustSubjects("NAME")
	var wantSubj []string
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		switch f := v.Type().Field(i).Name; f {
		case "Name", "Stream", "All":
		default:
			wantSubj = append(wantSubj, v.Field(i).String())
		}
	}
	var gotSubj []string
	for _, row := range tables["Layout"] {
		gotSubj = append(gotSubj, code(row[0]))
	}
	slices.Sort(wantSubj)
	slices.Sort(gotSubj)
	if !slices.Equal(gotSubj, wantSubj) {
		t.Errorf("docs/bus.md, Layout: subjects %v\nthe code has %v", gotSubj, wantSubj)
	}
	for _, name := range []string{s.Stream, s.All, CatalogBucket} {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/bus.md does not name `%s`", name)
		}
	}
}
