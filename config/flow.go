package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/match"
	"github.com/weir-edge/weir/route"
)

// DataFlow is the controlled data flow a configuration sets up, as
// `weir validate` shows it: for every sink, what its route selects, its
// own processors, the highest class it may receive, and which classes of
// the tags the configuration knows it would receive or have held back;
// and the warnings where a route asks for more than its sink may take.
// Built by FlowReport from the configuration alone (no I/O; sources are
// constructed, not run, to list their tags). Branch-neutral data: the
// CLI and the API print it.
type DataFlow struct {
	// Classification as configured: the default class and the rules.
	DefaultClass string     `json:"default_class"`
	Rules        []FlowRule `json:"rules,omitempty"`
	// Carried are the rules' patterns carried through the shared chain's
	// renames and sibling tags, so that they hold on the paths samples
	// have when they leave it (Config.Classifier); one pattern each.
	Carried []FlowRule `json:"carried_rules,omitempty"`
	// KnownTags counts the tags the configuration names, as they leave
	// the shared chain (where routes classify them): the sources' tags
	// through the shared renames, the aggregates of shared windows, rate's
	// sibling tags, derived tags and the paths rules set or send events
	// on. Tags of RuntimeSources are not among them.
	KnownTags int `json:"known_tags"`
	// Classes counts the known tags per class, lowest class first
	// (classes with no tag are left out).
	Classes []ClassCount `json:"classes,omitempty"`
	// RuntimeSources are the sources whose tags are known only at run
	// time (MQTT subscriptions): routes and classes apply to them then.
	RuntimeSources []string `json:"runtime_sources,omitempty"`
	// Sinks in configuration order.
	Sinks []SinkFlow `json:"sinks"`
	// Warnings, also reported by validation at file:line (they do not
	// stop the configuration).
	Warnings []FlowWarning `json:"warnings,omitempty"`
}

// FlowRule is one classification rule.
type FlowRule struct {
	Match []string `json:"match"`
	Class string   `json:"class"`
}

// ClassCount is a number of known tags of one class.
type ClassCount struct {
	Class string `json:"class"`
	Tags  int    `json:"tags"`
}

// SinkFlow is one sink's route and what it lets through.
type SinkFlow struct {
	Name string `json:"name"`
	// Kind is the sink's protocol block (mqtt, kafka, historian, …).
	Kind string `json:"kind"`
	// MaxClass is the highest class the sink may receive (default
	// internal).
	MaxClass string `json:"max_class"`
	// Include, Exclude and Quality are the route's selection; an empty
	// Include selects every tag, Quality is "any" unless set.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	Quality string   `json:"quality"`
	// Processors are the route's own chain, "name (type)", in order.
	Processors []string `json:"processors,omitempty"`
	// Receives counts, per class, the known tags the route selects and
	// the class allows: what leaves through this sink.
	Receives []ClassCount `json:"receives,omitempty"`
	// Denied counts, per class, the known tags the route selects but the
	// sink's class holds back (each reported once as a security event
	// when it flows).
	Denied []ClassCount `json:"denied,omitempty"`
}

// FlowWarning is a route that asks for more than its sink may take, or a
// derived tag classified below its inputs.
type FlowWarning struct {
	// Sink is the sink the warning is about; "" for a derived tag.
	Sink string `json:"sink,omitempty"`
	// Key is the key path warned at ("sinks[1].route.include[0]").
	Key string `json:"key"`
	Msg string `json:"message"`
}

// flowAnalysis is what FlowReport and validation's warnings share: the
// classifier the routes run with and the known tags, classified by it.
type flowAnalysis struct {
	cl      *route.Classifier // nil when the classification is invalid
	eff     []route.EffectiveRule
	effM    []*match.Matcher // one per eff
	tags    []string
	classOf []route.Class
	source  []string // the sources' tags before the shared chain
	runtime []string
}

func analyse(cfg *Config) *flowAnalysis {
	a := &flowAnalysis{}
	if cl, err := cfg.Classifier(); err == nil { // invalid: Validate reports it
		a.cl = cl
		a.eff = cl.Rules()
		for _, e := range a.eff {
			a.effM = append(a.effM, compileOrNil([]string{e.Filter}))
		}
	}
	a.tags, a.source, a.runtime = chainTags(cfg)
	a.classOf = make([]route.Class, len(a.tags))
	for i, t := range a.tags {
		a.classOf[i] = a.cl.Class(t)
	}
	return a
}

// FlowReport analyses cfg (valid; an invalid part is skipped, Validate
// reports it) into its DataFlow.
func FlowReport(cfg *Config) DataFlow {
	a := analyse(cfg)
	rep := DataFlow{DefaultClass: a.cl.Default().String(), RuntimeSources: a.runtime}
	for _, r := range cfg.Classification.Rules {
		rep.Rules = append(rep.Rules, FlowRule{Match: slices.Clone(r.Match), Class: r.Class})
	}
	for _, e := range a.eff {
		if e.Mapped {
			rep.Carried = append(rep.Carried, FlowRule{Match: []string{e.Filter}, Class: e.Class.String()})
		}
	}
	rep.KnownTags = len(a.tags)
	var all [route.Restricted + 1]int
	for _, c := range a.classOf {
		all[c]++
	}
	rep.Classes = classCounts(all)
	rep.Warnings = deriveWarnings(cfg, a)
	for i := range cfg.Sinks {
		s := &cfg.Sinks[i]
		sf := SinkFlow{Name: s.Name, Kind: kindOf(sinkRows, s), Quality: route.QualityAny}
		maxClass, err := route.ParseClass(s.MaxClass, route.DefaultClass)
		if err != nil {
			maxClass = route.DefaultClass
		}
		sf.MaxClass = maxClass.String()
		var sel route.Selection
		if s.Route != nil {
			sel = s.Route.Selection
			for _, p := range s.Route.Processors {
				sf.Processors = append(sf.Processors, fmt.Sprintf("%s (%s)", p.Name, kindOf(processorRows, &p)))
			}
		}
		sf.Include, sf.Exclude = slices.Clone(sel.Include), slices.Clone(sel.Exclude)
		if sel.Quality != "" {
			sf.Quality = sel.Quality
		}
		inc, exc := compileOrNil(sel.Include), compileOrNil(sel.Exclude)
		var recv, den [route.Restricted + 1]int
		for j, t := range a.tags {
			if (inc != nil && !inc.MatchConcurrent(t)) || (exc != nil && exc.MatchConcurrent(t)) {
				continue
			}
			if a.classOf[j] > maxClass {
				den[a.classOf[j]]++
			} else {
				recv[a.classOf[j]]++
			}
		}
		sf.Receives, sf.Denied = classCounts(recv), classCounts(den)
		rep.Sinks = append(rep.Sinks, sf)
		rep.Warnings = append(rep.Warnings, routeWarnings(cfg, i, maxClass, a)...)
	}
	return rep
}

// flowWarnings are FlowReport's warnings as conf warnings at their key,
// for validation. Sources are built (no I/O) to know their tags only when
// there is something to judge: a sink with a route or a max_class, or a
// derived tag.
func flowWarnings(cfg *Config) error {
	judge := slices.ContainsFunc(cfg.Sinks, func(s Sink) bool { return s.Route != nil || s.MaxClass != "" }) ||
		slices.ContainsFunc(cfg.Processors, func(p Processor) bool { return p.Derive != nil })
	if !judge {
		return nil
	}
	if _, err := cfg.Classifier(); err != nil {
		return nil // Validate reports it
	}
	a := analyse(cfg)
	ws := deriveWarnings(cfg, a)
	for i := range cfg.Sinks {
		maxClass, err := route.ParseClass(cfg.Sinks[i].MaxClass, route.DefaultClass)
		if err != nil {
			continue
		}
		ws = append(ws, routeWarnings(cfg, i, maxClass, a)...)
	}
	var errs conf.Errors
	for _, w := range ws {
		errs.Add(conf.Warnf(w.Key, "%s", w.Msg))
	}
	return errs.Err()
}

// deriveWarnings warns where a derived tag of the shared chain is
// classified below one of its inputs: its value is computed from data a
// lower-class sink may not receive, and it would leave through such a
// sink unless a rule classifies it too.
func deriveWarnings(cfg *Config, a *flowAnalysis) []FlowWarning {
	if a.cl == nil {
		return nil
	}
	var out []FlowWarning
	for i, p := range cfg.Processors {
		if p.Derive == nil {
			continue
		}
		for j, t := range p.Derive.Tags {
			if t.Path == "" {
				continue
			}
			own := a.cl.Class(t.Path)
			top, inputs := route.Class(0), []string(nil)
			for _, in := range t.Vars {
				switch c := a.cl.Class(in); {
				case c > top:
					top, inputs = c, []string{in}
				case c == top:
					inputs = append(inputs, in)
				}
			}
			if top <= own {
				continue
			}
			slices.Sort(inputs)
			out = append(out, FlowWarning{Key: fmt.Sprintf("processors[%d].derive.tags[%d].path", i, j),
				Msg: fmt.Sprintf("derive %s computes %s %s tag from %s inputs (%s): classify it or it may leave through %s sinks",
					t.Path, article(own), own, top, strings.Join(inputs, ", "), own)})
		}
	}
	return out
}

func article(c route.Class) string {
	if c == route.Internal {
		return "an"
	}
	return "a"
}

// routeWarnings warns where sink i's route plainly asks for tags above
// the sink's class: per include pattern, the known tags it selects (and
// no exclude pattern removes) that are classified above, counted per
// class, and the areas classification rules put above that the pattern
// takes in (one covers the other and no exclude pattern covers their
// overlap; patterns that merely could overlap through wildcards are not
// warned about). A route without include selects every tag: it is judged
// the same way when the sink has a route block or a max_class, so that a
// sink someone restricted says what it will hold back; a sink with
// neither is the plain default and is not warned about. The class
// boundary holds either way: the warning is for a route that asks for
// what it cannot get.
func routeWarnings(cfg *Config, i int, maxClass route.Class, a *flowAnalysis) []FlowWarning {
	s := &cfg.Sinks[i]
	var excl []string
	if s.Route != nil {
		excl = s.Route.Exclude
	}
	type pattern struct{ filter, key, lead string }
	var pats []pattern
	switch {
	case s.Route != nil && len(s.Route.Include) > 0:
		for j, f := range s.Route.Include {
			pats = append(pats, pattern{f, conf.Index(conf.Index("sinks", i)+".route.include", j), fmt.Sprintf("%q selects", f)})
		}
	case s.Route != nil:
		pats = append(pats, pattern{"#", conf.Index("sinks", i) + ".route", "the route has no include: it selects every tag, among them"})
	case s.MaxClass != "":
		pats = append(pats, pattern{"#", conf.Index("sinks", i) + ".max_class", "the sink has no route: it selects every tag, among them"})
	}
	var out []FlowWarning
	for _, p := range pats {
		if msg := a.above(p.filter, excl, maxClass); msg != "" {
			out = append(out, FlowWarning{Sink: s.Name, Key: p.key,
				Msg: fmt.Sprintf("%s %s, above the sink's max_class %s: they are held back and reported, not sent", p.lead, msg, maxClass)})
		}
	}
	if s.Route != nil {
		out = append(out, a.renamedAway(s.Name, conf.Index("sinks", i)+".route.include", s.Route.Include)...)
		out = append(out, a.renamedAway(s.Name, conf.Index("sinks", i)+".route.exclude", s.Route.Exclude)...)
	}
	return out
}

// isRenamedAway: m matches source tags but no tag as it leaves the chain.
func (a *flowAnalysis) isRenamedAway(m *match.Matcher) bool {
	return !slices.ContainsFunc(a.tags, m.MatchConcurrent) && slices.ContainsFunc(a.source, m.MatchConcurrent)
}

// renamedAway warns about route patterns written for the paths sources
// make when the shared chain renames those paths: the pattern matches
// source tags but none of the tags as they leave the chain, which is
// where routes see them. An include then selects nothing, and — worse —
// an exclude keeps nothing away.
func (a *flowAnalysis) renamedAway(sink, key string, filters []string) []FlowWarning {
	var out []FlowWarning
	for j, f := range filters {
		m := compileOrNil([]string{f})
		if m == nil || !a.isRenamedAway(m) {
			continue
		}
		k := slices.IndexFunc(a.source, m.MatchConcurrent)
		what := "selects none of them"
		if strings.HasSuffix(key, ".exclude") {
			what = "keeps none of them away from the sink"
		}
		out = append(out, FlowWarning{Sink: sink, Key: conf.Index(key, j),
			Msg: fmt.Sprintf("%q matches tags as sources name them (%s), but the shared chain renames them and routes see the renamed paths: it %s; write it for the paths that leave the chain",
				f, a.source[k], what)})
	}
	return out
}

// above describes what the include filter f (less the exclude filters)
// selects above maxClass: "1 internal and 2 confidential known tags
// (internal by default; confidential by classification.rules[1] …)",
// then the rule areas above with no known tag; "" for nothing.
func (a *flowAnalysis) above(f string, exclude []string, maxClass route.Class) string {
	m := compileOrNil([]string{f})
	if m == nil || a.isRenamedAway(m) {
		return "" // renamedAway says what is wrong with it
	}
	exc := compileOrNil(exclude)
	var n [route.Restricted + 1]int
	var reasons [route.Restricted + 1][]string // distinct rules
	var carried [route.Restricted + 1]bool
	for t, path := range a.tags {
		if c := a.classOf[t]; c > maxClass && m.MatchConcurrent(path) && (exc == nil || !exc.MatchConcurrent(path)) {
			n[c]++
			r, mapped := a.reason(c, path)
			carried[c] = carried[c] || mapped
			if r == "" {
				r = "default"
			}
			if !slices.Contains(reasons[c], r) {
				reasons[c] = append(reasons[c], r)
			}
		}
	}
	var counts, why, areas []string
	for c := route.Public; c <= route.Restricted; c++ {
		if n[c] == 0 {
			continue
		}
		counts = append(counts, fmt.Sprintf("%d %s", n[c], c))
		rs := reasons[c]
		if len(rs) > maxReasons {
			rs = append(rs[:maxReasons:maxReasons], fmt.Sprintf("%d more rules", len(rs)-maxReasons))
		}
		w := fmt.Sprintf("%s by %s", c, strings.Join(rs, ", "))
		if carried[c] {
			w += " (carried through the shared chain)"
		}
		why = append(why, w)
	}
	inc, excl := strings.Split(f, "/"), splitValid(exclude)
	var areaDone [route.Restricted + 1]bool
	for k, e := range a.eff {
		c := e.Class
		if c <= maxClass || n[c] > 0 || areaDone[c] {
			continue
		}
		rl := strings.Split(e.Filter, "/")
		if !covers(inc, rl) && !covers(rl, inc) {
			continue
		}
		both, _ := intersect(inc, rl)
		if slices.ContainsFunc(excl, func(x []string) bool { return covers(x, both) }) {
			continue
		}
		areaDone[c] = true
		areas = append(areas, fmt.Sprintf("tags classified %s %s", c, a.ruleText(k)))
	}
	var parts []string
	if len(counts) > 0 {
		parts = append(parts, fmt.Sprintf("%s known tag%s (%s)", andList(counts), plural(sum(n[:])), strings.Join(why, "; ")))
	}
	parts = append(parts, areas...)
	return andList(parts)
}

// maxReasons bounds the rules a warning names per class.
const maxReasons = 3

// reason says why path has class c: the first rule of that class that
// matches it (and whether as carried through the shared chain), or ""
// for the default class.
func (a *flowAnalysis) reason(c route.Class, path string) (string, bool) {
	for k, e := range a.eff {
		if e.Class == c && a.effM[k] != nil && a.effM[k].MatchConcurrent(path) {
			return fmt.Sprintf("classification.rules[%d] %q", e.Rule, e.Pattern), e.Mapped
		}
	}
	return "", false
}

func (a *flowAnalysis) ruleText(k int) string {
	e := a.eff[k]
	t := fmt.Sprintf("by classification.rules[%d] %q", e.Rule, e.Pattern)
	if e.Mapped {
		t += fmt.Sprintf(" (carried through the shared chain as %q)", e.Filter)
	}
	return t
}

func andList(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func sum(n []int) int {
	t := 0
	for _, v := range n {
		t += v
	}
	return t
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func classCounts(n [route.Restricted + 1]int) []ClassCount {
	var out []ClassCount
	for c := route.Public; c <= route.Restricted; c++ {
		if n[c] > 0 {
			out = append(out, ClassCount{Class: c.String(), Tags: n[c]})
		}
	}
	return out
}

// compileOrNil compiles filters; nil for none or invalid ones.
func compileOrNil(filters []string) *match.Matcher {
	if len(filters) == 0 {
		return nil
	}
	m, err := match.Compile(filters)
	if err != nil {
		return nil
	}
	return m
}

func splitValid(filters []string) [][]string {
	var out [][]string
	for _, f := range filters {
		if match.Check(f) == nil {
			out = append(out, strings.Split(f, "/"))
		}
	}
	return out
}

// intersect is the filter matching exactly the paths both a and b match
// ('+' one level, '#' the rest including nothing), and whether there is
// any.
func intersect(a, b []string) ([]string, bool) {
	var out []string
	for i := 0; ; i++ {
		switch {
		case i < len(a) && a[i] == "#":
			return append(out, b[min(i, len(b)):]...), true
		case i < len(b) && b[i] == "#":
			return append(out, a[min(i, len(a)):]...), true
		case i == len(a) && i == len(b):
			return out, true
		case i == len(a) || i == len(b):
			return nil, false
		case a[i] == "+":
			out = append(out, b[i])
		case b[i] == "+" || a[i] == b[i]:
			out = append(out, a[i])
		default:
			return nil, false
		}
	}
}

// covers reports whether every path f matches is matched by e.
func covers(e, f []string) bool {
	for i := 0; ; i++ {
		switch {
		case i < len(e) && e[i] == "#":
			return true
		case i == len(e) && i == len(f):
			return true
		case i == len(e) || i == len(f):
			return false
		case f[i] == "#":
			return false
		case e[i] == "+" || e[i] == f[i]:
		default:
			return false
		}
	}
}
