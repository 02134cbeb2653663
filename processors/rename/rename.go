package rename

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/processors/match"
)

// Processor re-roots tag paths: a leading prefix of whole levels is
// replaced by another (or removed).
type Processor struct {
	match   *match.Matcher
	from    string // without trailing '/'
	fromDir string // from + "/"
	to      string // without trailing '/'; "" strips
	maxTags int
	log     *slog.Logger
	// cache remembers the outcome per original path, so a repeated path
	// costs one map lookup and no allocation. Bounded by maxTags; paths
	// beyond it are worked out each time.
	cache map[string]outcome

	renamed  atomic.Uint64
	invalid  atomic.Uint64
	uncached atomic.Uint64
	tags     atomic.Int64
}

var (
	_ pipeline.Processor      = (*Processor)(nil)
	_ pipeline.StatusReporter = (*Processor)(nil)
)

// outcome is what the processor does to one path.
type outcome struct {
	path string // the new path when act == actRename
	act  action
}

type action uint8

const (
	actKeep    action = iota // not selected, or no such prefix: unchanged
	actRename                // replace the path
	actInvalid               // the new path would be invalid: unchanged, counted
)

// New builds the processor; it validates cfg again.
func New(cfg Config, log *slog.Logger) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rename: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := match.Compile(cfg.Match)
	if err != nil {
		return nil, fmt.Errorf("rename: %w", err)
	}
	from := trimLevels(cfg.From)
	return &Processor{
		match: m, from: from, fromDir: from + "/", to: trimLevels(cfg.To),
		maxTags: cfg.MaxTags, log: log, cache: make(map[string]outcome),
	}, nil
}

// Process rewrites the path of every selected sample that starts with the
// prefix, in place; no sample is added or removed, so order is kept.
func (p *Processor) Process(batch []model.Sample) []model.Sample {
	var renamed, invalid uint64 // published once per batch
	for i := range batch {
		s := &batch[i]
		o, ok := p.cache[s.Path]
		if !ok {
			o = p.lookupMiss(s.Path)
		}
		switch o.act {
		case actRename:
			s.Path = o.path
			renamed++
		case actInvalid:
			invalid++
		}
	}
	if renamed > 0 {
		p.renamed.Add(renamed)
	}
	if invalid > 0 {
		p.invalid.Add(invalid)
	}
	return batch
}

// lookupMiss works out the outcome for a path not in the cache and
// remembers it while there is room.
func (p *Processor) lookupMiss(path string) outcome {
	if len(p.cache) >= p.maxTags {
		p.uncached.Add(1)
		return p.outcome(path)
	}
	// Own copy of the key: a source's path may share memory with a larger
	// message buffer the cache should not keep alive.
	path = strings.Clone(path)
	o := p.outcome(path)
	if o.act == actInvalid {
		p.log.Warn("rename would make an invalid tag path; passed unchanged", "path", path, "from", p.from, "to", p.to)
	}
	p.cache[path] = o
	p.tags.Store(int64(len(p.cache)))
	return o
}

// outcome renames path if it is selected and starts with the prefix in
// whole levels.
func (p *Processor) outcome(path string) outcome {
	var rest string
	switch {
	case path == p.from:
		rest = ""
	case strings.HasPrefix(path, p.fromDir):
		rest = path[len(p.fromDir):]
	default:
		return outcome{act: actKeep}
	}
	if !p.match.MatchConcurrent(path) {
		return outcome{act: actKeep}
	}
	var np string
	switch {
	case p.to == "":
		np = rest
	case rest == "":
		np = p.to
	default:
		np = p.to + "/" + rest
	}
	if model.ValidatePath(np) != nil {
		return outcome{act: actInvalid}
	}
	return outcome{path: np, act: actRename}
}

// Status reports the processor's counters; safe to call concurrently.
func (p *Processor) Status() pipeline.Status {
	return pipeline.Status{
		Counters: map[string]uint64{
			"renamed":         p.renamed.Load(),
			"rename_invalid":  p.invalid.Load(),
			"rename_uncached": p.uncached.Load(),
		},
		Gauges: map[string]float64{"tracked_tags": float64(p.tags.Load())},
	}
}
