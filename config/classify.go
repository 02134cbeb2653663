package config

import (
	"log/slog"
	"slices"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/rename"
	"github.com/weir-edge/weir/route"
)

// Classifier builds the classification every route applies: the
// configured rules, carried through the path changes of the shared chain
// (renames, rate's sibling tags; see route.PathChange) so that rules
// written for the paths sources make hold on the paths samples have when
// they leave the chain, where routes classify them. A rename in the
// shared chain can therefore not launder a confidential tag into an
// internal one. Build, hot reload and validate's flow report all use it:
// what validate shows is what runs.
func (c *Config) Classifier() (*route.Classifier, error) {
	return route.NewClassifier(c.Classification, c.sharedPathChanges()...)
}

// sharedPathChanges are the shared chain's path changes in chain order.
// A processor's match list is ignored: a rule carried for paths the
// processor leaves alone classifies more, never less.
func (c *Config) sharedPathChanges() []route.PathChange {
	var out []route.PathChange
	for _, p := range c.Processors {
		switch {
		case p.Rename != nil && p.Rename.From != "":
			out = append(out, route.PathChange{From: p.Rename.From, To: p.Rename.To})
		case p.Rate != nil && !p.Rate.Replace && p.Rate.Output.PathSuffix != "":
			out = append(out, route.PathChange{Suffix: p.Rate.Output.PathSuffix})
		}
	}
	return out
}

// chainTags are the tag paths as they leave the shared chain, as far as
// the configuration names them: every source's tags (sources built, not
// run), carried through the shared processors in order — renames applied
// by the rename processor itself, a window's aggregates below each tag it
// matches (path/<aggregate>_<label>, the raw tag gone unless
// pass_through), rate's sibling tags, derived tags — then the paths rules
// set or send events on; sorted, once each. source are the sources' tags
// as they enter the chain; runtime names the sources whose tags are known
// only at run time (MQTT subscriptions).
func chainTags(cfg *Config) (tags, source, runtime []string) {
	var cur []string
	env := buildEnv{log: slog.New(slog.DiscardHandler)}
	for i := range cfg.Sources {
		src, err := buildKind(sourceRows, &cfg.Sources[i], env, "protocol")
		if err != nil {
			continue
		}
		var known []model.Tag
		if l, ok := src.(interface{ Tags() []model.Tag }); ok {
			known = l.Tags()
		}
		if len(known) == 0 {
			runtime = append(runtime, cfg.Sources[i].Name)
		}
		for _, t := range known {
			cur = append(cur, t.Path)
		}
	}
	source = slices.Compact(slices.Sorted(slices.Values(cur)))
	for _, p := range cfg.Processors {
		switch {
		case p.Rename != nil:
			rp, err := rename.New(*p.Rename, nil)
			if err != nil {
				continue
			}
			batch := make([]model.Sample, len(cur))
			for i, t := range cur {
				batch[i] = model.Sample{Path: t}
			}
			for i, s := range rp.Process(batch) {
				cur[i] = s.Path
			}
		case p.Window != nil:
			m := compileOrNil(p.Window.Match)
			names := p.Window.OutputNames()
			var next []string
			for _, t := range cur {
				if m != nil && !m.MatchConcurrent(t) {
					next = append(next, t)
					continue
				}
				if p.Window.PassThrough {
					next = append(next, t)
				}
				for _, n := range names {
					next = append(next, t+"/"+n)
				}
			}
			cur = next
		case p.Rate != nil && !p.Rate.Replace && p.Rate.Output.PathSuffix != "":
			m := compileOrNil(p.Rate.Match)
			for _, t := range slices.Clone(cur) {
				if m == nil || m.MatchConcurrent(t) {
					cur = append(cur, t+p.Rate.Output.PathSuffix)
				}
			}
		case p.Derive != nil:
			for _, t := range p.Derive.Tags {
				cur = append(cur, t.Path)
			}
		}
	}
	for _, r := range cfg.Rules.Rules {
		for _, a := range slices.Concat(r.Actions, r.OnClear) {
			switch {
			case a.Set != nil && a.Set.Path != "":
				cur = append(cur, a.Set.Path)
			case a.Event != nil && a.Event.Path != "":
				cur = append(cur, a.Event.Path)
			}
		}
	}
	slices.Sort(cur)
	return slices.Compact(cur), source, runtime
}
