package api

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/pipeline"
)

// The Grafana dashboard shipped in docs/ queries the metrics this package
// exports. These tests keep the two in step: a metric renamed or removed
// from the catalogue, a rate() over a gauge or a histogram_quantile() over
// anything but a histogram's buckets fails here instead of showing an
// empty panel on a plant's wall.

const dashboardPath = "../docs/grafana/weir.json"

// histograms are the catalogue's histogram families (exported with
// _bucket, _sum and _count series). TestCatalogueTypes checks this and the
// naming rule of catalogueType against a real scrape.
var histograms = map[string]bool{
	"weir_sink_latency_seconds":         true,
	"weir_sink_gateway_latency_seconds": true,
}

// catalogueType is the Prometheus type of a catalogue metric: counters end
// in _total (the collector appends it to every counter key), the latency
// families are histograms, everything else is a gauge.
func catalogueType(name string) string {
	switch {
	case histograms[name]:
		return "histogram"
	case strings.HasSuffix(name, "_total"):
		return "counter"
	default:
		return "gauge"
	}
}

// foreignMetrics are metrics the dashboard may use that are not Weir's own:
// the Go client's process collector, exported next to them.
var foreignMetrics = map[string]string{
	"process_resident_memory_bytes": "gauge",
	"process_cpu_seconds_total":     "counter",
	"go_goroutines":                 "gauge",
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func flatPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatPanels(p.Panels)...)
	}
	return out
}

// The dashboard is a current Grafana dashboard with a Prometheus data
// source variable, and every panel queries through it.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 { // 36: data sources referenced by uid
		t.Errorf("schemaVersion %d: older than Grafana 9", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both needed for provisioning", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "datasource" && string(v.Query) != `"prometheus"` {
			t.Errorf("variable %s: query %s, want \"prometheus\"", v.Name, v.Query)
		}
		if v.Type == "query" {
			lintExpr(t, "variable "+v.Name, labelValuesSelector(v.Definition))
		}
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable of type datasource: %v", vars)
	}
	for _, want := range []string{"node", "instance"} {
		if vars[want] != "query" {
			t.Errorf("no %s query variable: %v", want, vars)
		}
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range flatPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			for _, ref := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if _, ok := vars[ref[1]]; !ok && !strings.HasPrefix(ref[1], "__") {
					t.Errorf("panel %q: $%s is not a dashboard variable", p.Title, ref[1])
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("%d queries: the dashboard lost its panels", queries)
	}
}

// labelValuesSelector returns the series selector of label_values(sel, l).
func labelValuesSelector(def string) string {
	m := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`).FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		return def
	}
	return m[1]
}

// Every metric a panel queries is in the catalogue (help.go), and is used
// as its type allows.
func TestDashboardMetrics(t *testing.T) {
	d := loadDashboard(t)
	used := map[string]bool{}
	for _, p := range flatPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, m := range lintExpr(t, fmt.Sprintf("panel %q %s", p.Title, tg.RefID), tg.Expr) {
				used[m] = true
			}
		}
	}
	// Each area the dashboard promises has at least one of its metrics.
	for area, prefix := range map[string]string{
		"throughput": "weir_sink_samples_written_total", "latency": "weir_sink_latency_seconds_bucket",
		"buffers": "weir_sink_buffer_", "states": "weir_component_", "errors": "weir_sink_write_errors_total",
		"security": "weir_security_", "audit": "weir_audit_", "dead letters": "weir_sink_dead_letter_",
	} {
		found := false
		for m := range used {
			found = found || strings.HasPrefix(m, prefix)
		}
		if !found {
			t.Errorf("%s: no panel queries %s*", area, prefix)
		}
	}
}

func TestLintExpr(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (name) (rate(weir_sink_samples_written_total{instance=~"$instance"}[$__rate_interval]))`, true},
		{`histogram_quantile(0.99, sum by (le, name) (rate(weir_sink_latency_seconds_bucket[5m])))`, true},
		{`max(weir_sink_buffer_oldest_age_seconds{name="a"}) > 300`, true},
		{`time() - weir_component_last_error_timestamp_seconds`, true},
		{`rate(weir_sink_buffer_depth_samples[5m])`, false},                                            // rate of a gauge
		{`weir_sink_write_errors_total`, false},                                                        // a raw counter
		{`histogram_quantile(0.9, sum by (le) (rate(weir_sink_write_errors_total[5m])))`, false},       // not buckets
		{`histogram_quantile(0.9, sum by (name) (rate(weir_sink_latency_seconds_bucket[5m])))`, false}, // le lost
		{`rate(weir_sink_latency_seconds_bucket[5m])`, false},                                          // buckets without a quantile
		{`rate(weir_sink_samples_writen_total[5m])`, false},                                            // not in the catalogue
		{`rate(weir_sink_samples_total[5m])`, false},                                                   // a duplicate, not exported
		{`histogram_quantil(0.9, sum by (le) (rate(weir_sink_latency_seconds_bucket[5m])))`, false},    // no such function
		{`sum(rate(weir_sink_write_errors_total[5m]`, false},                                           // unbalanced
	} {
		ft := &fakeT{}
		lintExpr(ft, "expr", tc.expr)
		if ok := len(ft.errs) == 0; ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%v)", tc.expr, ok, tc.ok, ft.errs)
		}
	}
}

// errorer is the part of testing.T lintExpr needs, so TestLintExpr can
// check that it complains.
type errorer interface {
	Helper()
	Errorf(format string, args ...any)
}

type fakeT struct{ errs []string }

func (*fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

var promqlFuncs = map[string]bool{
	"rate": true, "irate": true, "increase": true, "histogram_quantile": true, "time": true, "vector": true,
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "topk": true, "bottomk": true,
	"max_over_time": true, "min_over_time": true, "avg_over_time": true, "changes": true, "resets": true,
	"clamp_min": true, "clamp_max": true, "abs": true, "absent": true, "label_values": true, "delta": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "topk": true, "bottomk": true,
}

var counterFuncs = map[string]bool{"rate": true, "irate": true, "increase": true, "resets": true}

// lintExpr checks one PromQL expression: every metric is in the catalogue
// (or one of the few foreign ones), counters are only read through
// rate/irate/increase, gauges never are, and histogram buckets only feed
// histogram_quantile with le kept in the aggregation. It returns the
// metric names used. A small scanner, not a PromQL parser: it knows
// strings, label matchers, ranges, function calls and grouping clauses,
// which is all the dashboard writes.
func lintExpr(t errorer, where, expr string) []string {
	t.Helper()
	var used []string
	var stack []string // enclosing calls; "" for a plain parenthesis
	i := 0
	prevIdent := ""
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(expr[i+1:], c)
			if j < 0 {
				t.Errorf("%s: unterminated string in %s", where, expr)
				return used
			}
			i += j + 2
			continue
		case c == '{' || c == '[':
			end := map[byte]byte{'{': '}', '[': ']'}[c]
			j := i + 1
			for j < len(expr) && expr[j] != end {
				if expr[j] == '"' {
					k := strings.IndexByte(expr[j+1:], '"')
					if k < 0 {
						break
					}
					j += k + 1
				}
				j++
			}
			if j >= len(expr) {
				t.Errorf("%s: unbalanced %c in %s", where, c, expr)
				return used
			}
			i = j + 1
			continue
		case c == '(':
			stack = append(stack, prevIdent)
			prevIdent = ""
			i++
			continue
		case c == ')':
			if len(stack) == 0 {
				t.Errorf("%s: unbalanced ) in %s", where, expr)
				return used
			}
			stack = stack[:len(stack)-1]
			prevIdent = ""
			i++
			continue
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			next := strings.TrimLeft(expr[i:], " \t\n")
			if strings.HasPrefix(next, "(") {
				if !promqlFuncs[word] {
					t.Errorf("%s: %s( is no PromQL function the dashboard is known to use", where, word)
				}
				prevIdent = word
				continue
			}
			prevIdent = ""
			if promqlWords[word] || (len(stack) > 0 && grouping(stack[len(stack)-1])) {
				continue // a keyword, or a label name in by/without/on
			}
			used = append(used, word)
			checkUse(t, where, expr, word, stack)
			continue
		case c == ' ' || c == '\t' || c == '\n':
			i++ // keeps prevIdent: "sum (" is a call
		default:
			prevIdent = ""
			i++
		}
	}
	if len(stack) != 0 {
		t.Errorf("%s: unbalanced ( in %s", where, expr)
	}
	return used
}

func grouping(f string) bool {
	switch f {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		return true
	}
	return false
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// innermostCall is the nearest enclosing named function, skipping plain
// parentheses.
func innermostCall(stack []string) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] != "" {
			return stack[i]
		}
	}
	return ""
}

func checkUse(t errorer, where, expr, metric string, stack []string) {
	t.Helper()
	typ, base, suffix := "", metric, ""
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(metric, s); ok && histograms[b] {
			base, suffix = b, s
		}
	}
	switch {
	case foreignMetrics[metric] != "":
		typ = foreignMetrics[metric]
	case help[base] != "":
		typ = catalogueType(base)
	default:
		if d := duplicates[metric]; d != "" {
			t.Errorf("%s: %s is not exported (it would count again what %s counts)", where, metric, d)
		} else {
			t.Errorf("%s: %s is not in the metric catalogue (api/help.go)", where, metric)
		}
		return
	}
	call := innermostCall(stack)
	inQuantile := false
	for _, f := range stack {
		inQuantile = inQuantile || f == "histogram_quantile"
	}
	if inQuantile && suffix != "_bucket" {
		t.Errorf("%s: histogram_quantile over %s, not a histogram's _bucket series", where, metric)
	}
	switch {
	case typ == "histogram" && suffix == "":
		t.Errorf("%s: %s is a histogram; query its _bucket, _sum or _count", where, metric)
	case typ == "histogram" && suffix == "_bucket":
		if !counterFuncs[call] || !inQuantile {
			t.Errorf("%s: %s only inside histogram_quantile(q, … rate(…_bucket[…]))", where, metric)
		}
		if !regexp.MustCompile(`by\s*\([^)]*\ble\b`).MatchString(expr) {
			t.Errorf("%s: histogram_quantile needs le in the aggregation (sum by (le, …)): %s", where, expr)
		}
	case typ == "counter" || suffix != "":
		if !counterFuncs[call] {
			t.Errorf("%s: %s is a counter; read it through rate(), irate() or increase(), not %q", where, metric, call)
		}
	case typ == "gauge":
		if counterFuncs[call] {
			t.Errorf("%s: %s is a gauge; %s() of it means nothing", where, metric, call)
		}
	}
}

type fixedStatus struct{ st engine.Status }

func (f fixedStatus) Status() engine.Status { return f.st }

// The type rule the dashboard lint relies on (catalogueType) holds for
// what the collector really exports: a sink with a buffer, dead letters and
// both latency histograms, a source with a part.
func TestCatalogueTypes(t *testing.T) {
	src := fixedStatus{st: engine.Status{Components: []engine.ComponentStatus{
		{Kind: "source", Up: true, Status: pipeline.Status{
			Name: "line", State: pipeline.StateRunning, LastErrorAt: time.Unix(1, 0),
			Counters: map[string]uint64{"samples": 3, "decode_errors": 1},
			Gauges:   map[string]float64{"known_tags": 2},
			Children: []pipeline.Status{{Name: "plc", State: pipeline.StateRunning,
				Counters: map[string]uint64{"requests": 1}, Gauges: map[string]float64{"last_cycle_seconds": 0.1}}},
		}},
		{Kind: "sink", Up: true, Status: pipeline.Status{Name: "uns", State: pipeline.StateRunning},
			Buffer:         &buffer.Stats{Depth: 1, Capacity: 10},
			Latency:        &engine.LatencyStats{Count: 1},
			GatewayLatency: &engine.LatencyStats{Count: 1},
			DeadLetters: &engine.DeadLetterStatus{Rejected: map[string]uint64{"oversize": 1},
				Held: map[string]int{"oversize": 1}}},
	}}}
	_, body := get(t, New(Options{Status: src}).Handler(), "/metrics")
	seen := 0
	for name, f := range parseExposition(t, strings.NewReader(body)) {
		if !strings.HasPrefix(name, "weir_") {
			continue
		}
		seen++
		if _, ok := help[name]; !ok {
			t.Errorf("%s: exported but not in the catalogue", name)
			continue
		}
		if got := catalogueType(name); got != f.typ {
			t.Errorf("%s: exported as %s, the catalogue rule says %s", name, f.typ, got)
		}
	}
	for h := range histograms {
		if !strings.Contains(body, "# TYPE "+h+" histogram") {
			t.Errorf("%s: not exported as a histogram", h)
		}
	}
	if seen < 20 {
		t.Errorf("only %d weir_ families exported:\n%s", seen, body)
	}
}

// Every name in the catalogue, not only those a test happens to export,
// follows the Prometheus naming conventions promlint checks: counters end in
// _total, units are base units spelled out as suffixes (_seconds, _bytes),
// no _total on a gauge, no reserved histogram suffixes elsewhere.
func TestCatalogueNamingConventions(t *testing.T) {
	names := make([]string, 0, len(help))
	for n := range help {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		typ := catalogueType(n)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", n, help[n], n, typ)
		if typ == "histogram" {
			fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} 1\n%s_sum 1\n%s_count 1\n", n, n, n)
		} else {
			fmt.Fprintf(&b, "%s 1\n", n)
		}
		if typ == "gauge" && strings.Contains(n, "_total") {
			t.Errorf("%s: a gauge named like a counter", n)
		}
	}
	problems, err := promlint.New(strings.NewReader(b.String())).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
