package tests

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/transcode"
	"github.com/whepcast/whepcast/pkg/whep"
)

const grafanaDashboard = deployDir + "/grafana/whepcast.json"

// noCatalog is a catalog without streams: the metrics need none.
type noCatalog struct{}

func (noCatalog) Get(string) (bus.CatalogEntry, bool) { return bus.CatalogEntry{}, false }
func (noCatalog) Wait(ctx context.Context, _ string) (bus.CatalogEntry, error) {
	<-ctx.Done()
	return bus.CatalogEntry{}, ctx.Err()
}

// exportedMetrics returns the names of every metric the broker and the
// whep-node export, read from the collectors the code registers (the
// ingest's, the transcoding stage's, the WHEP server's, and the Go and process collectors both
// binaries add), so that a renamed metric fails the dashboard test.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := ingest.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := transcode.New(nil, reg, transcode.Config{Mode: transcode.ModeOff}); err != nil {
		t.Fatal(err)
	}
	ws, err := whep.New(whep.Config{ICEUDPAddr: "127.0.0.1:0"}, whep.Deps{Catalog: noCatalog{}, Media: whep.FromRelay(nil), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	descs := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	for _, want := range []string{"whepcast_ingest_bytes_total", "whepcast_whep_sessions", "whepcast_whep_packets_nacked_total", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Fatalf("the collectors do not describe %s; found %v", want, slices.Sorted(func(yield func(string) bool) {
				for n := range names {
					if !yield(n) {
						return
					}
				}
			}))
		}
	}
	return names
}

// promQLWords are the PromQL functions, aggregations and keywords (and
// Grafana's label_values) the dashboard may use; any other identifier of
// a query is a metric name.
var promQLWords = map[string]bool{
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "by": true, "without": true,
	"rate": true, "increase": true, "irate": true, "histogram_quantile": true, "label_values": true,
	"on": true, "ignoring": true, "group_left": true, "and": true, "or": true, "unless": true,
	"offset": true, "clamp_min": true, "clamp_max": true, "abs": true,
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promNameRe   = regexp.MustCompile(`__name__\s*=~?\s*"((?:[^"\\]|\\.)*)"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`\$?[A-Za-z_:][A-Za-z0-9_:]*`)
)

// queriedMetrics returns the metric names a PromQL expression (or a
// Grafana label_values query) selects: the identifiers outside label
// matchers, ranges and groupings that are neither PromQL words, Grafana
// variables nor numbers, plus the alternatives of a __name__ matcher.
func queriedMetrics(expr string) []string {
	var names []string
	for _, m := range promNameRe.FindAllStringSubmatch(expr, -1) {
		names = append(names, strings.Split(m[1], "|")...)
	}
	// label_values(selector, label): the last argument is a label name.
	if i := strings.LastIndex(expr, ","); strings.HasPrefix(strings.TrimSpace(expr), "label_values(") && i >= 0 {
		expr = expr[:i] + ")"
	}
	rest := promMatchers.ReplaceAllString(promString.ReplaceAllString(expr, `""`), " ")
	rest = promGrouping.ReplaceAllString(promRange.ReplaceAllString(rest, " "), " ")
	for _, id := range promIdent.FindAllString(rest, -1) {
		if strings.HasPrefix(id, "$") || promQLWords[id] {
			continue
		}
		names = append(names, id)
	}
	return names
}

func TestQueriedMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (stream) (rate(whepcast_ingest_bytes_total{stream=~"$stream"}[$__rate_interval])) * 8`: {"whepcast_ingest_bytes_total"},
		`histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y{z}"}[5m]))) / b`:                      {"a_bucket", "b"},
		`label_values({__name__=~"m1|m2"}, stream)`:                                                    {"m1", "m2"},
		`label_values(up, instance)`:                                                                   {"up"},
		`go_goroutines{instance=~"$instance"}`:                                                         {"go_goroutines"},
	} {
		if got := queriedMetrics(expr); !slices.Equal(got, want) {
			t.Errorf("queriedMetrics(%s) = %q, want %q", expr, got, want)
		}
	}
}

// TestDeployGrafanaDashboard: deploy/grafana/whepcast.json is a dashboard
// Grafana imports (valid JSON, a Prometheus data source input, unique
// panel ids), it has the panels operators need, and every metric its
// queries and variables select is one the code exports.
func TestDeployGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var dash struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the dashboard object", grafanaDashboard)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion < 36 {
		t.Fatalf("%s: uid %q, title %q, schemaVersion %d: want a uid, a title and schema 36 or later", grafanaDashboard, dash.UID, dash.Title, dash.SchemaVersion)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Type != "datasource" || dash.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("%s: __inputs = %+v, want one Prometheus data source", grafanaDashboard, dash.Inputs)
	}
	if !strings.Contains(string(b), "${"+dash.Inputs[0].Name+"}") {
		t.Fatalf("%s: no panel uses the data source input ${%s}", grafanaDashboard, dash.Inputs[0].Name)
	}

	exported := exportedMetrics(t)
	known := func(name string) bool {
		if exported[name] || name == "up" { // up: Prometheus's own series per target
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
				return true
			}
		}
		return false
	}
	check := func(where, expr string) {
		names := queriedMetrics(expr)
		if len(names) == 0 {
			t.Errorf("%s: query %q selects no metric", where, expr)
		}
		for _, n := range names {
			if !known(n) {
				t.Errorf("%s: query %q uses %s, which the code does not export", where, expr, n)
			}
		}
	}

	ids := map[int]string{}
	var titles []string
	queried := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("%s: panels %q and %q share id %d", grafanaDashboard, prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			titles = append(titles, p.Title)
			if p.Type != "row" && p.Type != "text" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", grafanaDashboard, p.Title)
			}
			for _, tg := range p.Targets {
				check("panel "+p.Title, tg.Expr)
				for _, n := range queriedMetrics(tg.Expr) {
					queried[n] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		check("variable "+v.Name, q)
	}

	// The pictures the issue asks for: each is one metric the dashboard
	// must query.
	for what, metric := range map[string]string{
		"ingest health":       "whepcast_ingest_bytes_total",
		"live publications":   "whepcast_ingest_publications",
		"viewers":             "whepcast_whep_sessions",
		"time to first frame": "whepcast_whep_time_to_first_frame_seconds_bucket",
		"added latency":       "whepcast_whep_ingest_to_rtp_seconds_bucket",
		"NACKs":               "whepcast_whep_packets_nacked_total",
		"publish errors":      "whepcast_publish_errors_total",
		"transcodes":          "whepcast_transcode_active",
	} {
		if !queried[metric] {
			t.Errorf("%s: no panel shows %s (%s)", grafanaDashboard, what, metric)
		}
	}
	// A whepcast metric on no panel is reported, not failed: a new metric
	// may wait for its panel.
	for name := range exported {
		if strings.HasPrefix(name, "whepcast_") && !queried[name] && !queried[name+"_bucket"] && !queried[name+"_sum"] {
			t.Logf("%s: no panel queries %s", grafanaDashboard, name)
		}
	}
	t.Logf("%d panels: %s", len(titles), strings.Join(titles, ", "))
}
