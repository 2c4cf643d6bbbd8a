package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

const configDoc = "../../docs/configuration.md"

// docRow is one row of a key table of docs/configuration.md.
type docRow struct{ key, flag, env, def string }

// docRows returns the rows of the key tables of docs/configuration.md by
// key: the rows whose first cell is a `quoted` key.
func docRows(t *testing.T, doc string) map[string]docRow {
	t.Helper()
	rows := map[string]docRow{}
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 5 {
			t.Errorf("%s: row %q has %d cells, want 5 (key, flag, environment, default, meaning)", configDoc, line, len(cells))
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		r := docRow{key: strings.Trim(cells[0], "`"), flag: cells[1], env: cells[2], def: cells[3]}
		if _, dup := rows[r.key]; dup {
			t.Errorf("%s: key %s listed twice", configDoc, r.key)
		}
		rows[r.key] = r
	}
	return rows
}

// docDefault is how the default column writes an option's default: none
// for an empty string or list (with an explanation after it, if any),
// otherwise the value as the flag takes it, quoted.
func docDefault(o option) string {
	switch v := o.def.(type) {
	case string:
		if v == "" {
			return "none"
		}
	case []string:
		if len(v) == 0 {
			return "none"
		}
		return "`" + strings.Join(v, ",") + "`"
	}
	return "`" + fmt.Sprint(o.def) + "`"
}

// TestDocsListEveryOption keeps docs/configuration.md equal to the option
// table: every key of either binary has its row with its flag, its
// environment variable and its default (for each binary that has it), and
// the page lists no key that does not exist.
func TestDocsListEveryOption(t *testing.T) {
	b, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := docRows(t, string(b))
	known := map[string]bool{}
	for role, opts := range map[string][]option{"broker": brokerOptions(), "whep-node": nodeOptions()} {
		for _, o := range opts {
			known[o.key] = true
			r, ok := rows[o.key]
			if !ok {
				t.Errorf("%s: key %s (%s) is missing", configDoc, o.key, role)
				continue
			}
			if want := "`--" + o.flag + "`"; r.flag != want {
				t.Errorf("%s: key %s: flag %s, want %s", configDoc, o.key, r.flag, want)
			}
			if want := "`" + o.envName() + "`"; r.env != want {
				t.Errorf("%s: key %s: environment %s, want %s", configDoc, o.key, r.env, want)
			}
			if want := docDefault(o); !strings.Contains(r.def, want) {
				t.Errorf("%s: key %s: default %q does not say %s (%s's default)", configDoc, o.key, r.def, want, role)
			}
		}
	}
	for key := range rows {
		if !known[key] {
			t.Errorf("%s: key %s is no option of either binary", configDoc, key)
		}
	}
}

// TestDocsExamplesLoad loads the example files of docs/configuration.md: the
// first as a broker's, the second as a whep-node's.
func TestDocsExamplesLoad(t *testing.T) {
	b, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		examples = append(examples, block[:strings.Index(block, "```")])
	}
	if len(examples) != 2 {
		t.Fatalf("%s: %d YAML examples, want 2 (broker, whep-node)", configDoc, len(examples))
	}
	broker, err := LoadBroker([]string{"--config", writeFile(t, examples[0])}, nil)
	if err != nil {
		t.Fatalf("broker example: %v", err)
	}
	if want := []UDPIngest{{Stream: "cam1", Addr: "127.0.0.1:5000"}}; !reflect.DeepEqual(broker.UDPIngest, want) || broker.Takeover != "deny" {
		t.Errorf("broker example: udp-ingest %+v, takeover %q", broker.UDPIngest, broker.Takeover)
	}
	node, err := LoadNode([]string{"--config", writeFile(t, examples[1])}, nil)
	if err != nil {
		t.Fatalf("whep-node example: %v", err)
	}
	if node.WHEP.MaxSessions != 2000 || node.Log.Format != "json" {
		t.Errorf("whep-node example: max-sessions %d, log format %q", node.WHEP.MaxSessions, node.Log.Format)
	}
}
