package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
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
	// KnownTags counts the tags the configuration names: the sources'
	// tags (an MQTT source's tags are known only at run time and are not
	// counted) and the derived tags of the shared chain.
	KnownTags int `json:"known_tags"`
	// Classes counts the known tags per class, lowest class first
	// (classes with no tag are left out).
	Classes []ClassCount `json:"classes,omitempty"`
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

// FlowWarning is a route that asks for more than its sink may take.
type FlowWarning struct {
	Sink string `json:"sink"`
	// Key is the key path of the include pattern ("sinks[1].route.include[0]").
	Key string `json:"key"`
	Msg string `json:"message"`
}

// FlowReport analyses cfg (valid; an invalid part is skipped, Validate
// reports it) into its DataFlow.
func FlowReport(cfg *Config) DataFlow {
	cl, err := route.NewClassifier(cfg.Classification)
	if err != nil {
		cl = nil // invalid: Validate reports it
	}
	rep := DataFlow{DefaultClass: route.DefaultClass.String()}
	if c, err := route.ParseClass(cfg.Classification.Default, route.DefaultClass); err == nil {
		rep.DefaultClass = c.String()
	}
	for _, r := range cfg.Classification.Rules {
		rep.Rules = append(rep.Rules, FlowRule{Match: slices.Clone(r.Match), Class: r.Class})
	}
	tags := knownTags(cfg)
	rep.KnownTags = len(tags)
	classOf := make([]route.Class, len(tags))
	var all [route.Restricted + 1]int
	for i, t := range tags {
		classOf[i] = cl.Class(t)
		all[classOf[i]]++
	}
	rep.Classes = classCounts(all)
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
		for j, t := range tags {
			if (inc != nil && !inc.MatchConcurrent(t)) || (exc != nil && exc.MatchConcurrent(t)) {
				continue
			}
			if classOf[j] > maxClass {
				den[classOf[j]]++
			} else {
				recv[classOf[j]]++
			}
		}
		sf.Receives, sf.Denied = classCounts(recv), classCounts(den)
		rep.Sinks = append(rep.Sinks, sf)
		rep.Warnings = append(rep.Warnings, routeWarnings(cfg, i, maxClass, tags, classOf)...)
	}
	return rep
}

// flowWarnings are FlowReport's warnings as conf warnings at their key,
// for validation. Only the patterns are compared (no source is built):
// parse runs at every start and reload.
func flowWarnings(cfg *Config) error {
	var errs conf.Errors
	for i := range cfg.Sinks {
		maxClass, err := route.ParseClass(cfg.Sinks[i].MaxClass, route.DefaultClass)
		if err != nil {
			continue
		}
		for _, w := range routeWarnings(cfg, i, maxClass, nil, nil) {
			errs.Add(conf.Warnf(w.Key, "%s", w.Msg))
		}
	}
	return errs.Err()
}

// routeWarnings warns, per include pattern of sink i, when it can select
// tags classified above the sink's class: a classification rule above
// the class whose patterns overlap it (and no exclude pattern covers the
// overlap), or a known tag it selects that is classified above. An empty
// include (every tag) asks for nothing in particular and is not warned
// about: the class boundary simply holds.
func routeWarnings(cfg *Config, i int, maxClass route.Class, tags []string, classOf []route.Class) []FlowWarning {
	s := &cfg.Sinks[i]
	if s.Route == nil {
		return nil
	}
	excl := splitValid(s.Route.Exclude)
	exc := compileOrNil(s.Route.Exclude)
	var out []FlowWarning
	for j, f := range s.Route.Include {
		if match.Check(f) != nil {
			continue
		}
		inc := strings.Split(f, "/")
		worst, why := route.Class(0), ""
		for k, r := range cfg.Classification.Rules {
			c, err := route.ParseClass(r.Class, 0)
			if err != nil || c <= maxClass || c <= worst {
				continue
			}
			for _, rf := range r.Match {
				if match.Check(rf) != nil {
					continue
				}
				both, ok := intersect(inc, strings.Split(rf, "/"))
				if ok && !slices.ContainsFunc(excl, func(e []string) bool { return covers(e, both) }) {
					worst, why = c, fmt.Sprintf("classification.rules[%d] %q", k, rf)
					break
				}
			}
		}
		if d, err := route.ParseClass(cfg.Classification.Default, route.DefaultClass); err == nil && d > maxClass && d > worst {
			worst, why = d, "the default class"
		}
		if m := compileOrNil([]string{f}); m != nil {
			for t, path := range tags {
				if classOf[t] > maxClass && classOf[t] > worst && m.MatchConcurrent(path) && (exc == nil || !exc.MatchConcurrent(path)) {
					worst, why = classOf[t], fmt.Sprintf("tag %s", path)
				}
			}
		}
		if worst == 0 {
			continue
		}
		out = append(out, FlowWarning{Sink: s.Name, Key: conf.Index(conf.Index("sinks", i)+".route.include", j),
			Msg: fmt.Sprintf("%q can select tags classified %s (%s), above the sink's max_class %s: they are held back and reported, not sent",
				f, worst, why, maxClass)})
	}
	return out
}

// knownTags are the paths the configuration names: every source's tags
// (built, not run) and the shared chain's derived tags, sorted, once each.
func knownTags(cfg *Config) []string {
	seen := map[string]bool{}
	env := buildEnv{log: slog.New(slog.DiscardHandler)}
	for i := range cfg.Sources {
		src, err := buildKind(sourceRows, &cfg.Sources[i], env, "protocol")
		if err != nil {
			continue
		}
		if l, ok := src.(interface{ Tags() []model.Tag }); ok {
			for _, t := range l.Tags() {
				seen[t.Path] = true
			}
		}
	}
	for _, p := range cfg.Processors {
		if p.Derive != nil {
			for _, t := range p.Derive.Tags {
				seen[t.Path] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
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
