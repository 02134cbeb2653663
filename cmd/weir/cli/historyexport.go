package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
	"github.com/weir-edge/weir/sinks/historian"
)

func historyVerbs() []verb {
	return []verb{
		{name: "export", args: "[flags] [DIR]", summary: "write the historian's samples to stdout as CSV or JSON lines, per tag, oldest first (read-only; the gateway may be running)", define: defineHistoryExport},
	}
}

// historyPage is how many samples one query reads while exporting, so an
// export of years holds one page in memory.
const historyPage = 50_000

func defineHistoryExport(fs *flag.FlagSet) body {
	dataDir := fs.String("data-dir", "", "the gateway's data dir (default "+config.DefaultDataDir+", or the demo's when that does not exist); same as DIR")
	fromS := fs.String("from", "", "first time, RFC 3339 (default: the oldest sample)")
	toS := fs.String("to", "", "end time, RFC 3339, not included (default: everything)")
	format := fs.String("format", "csv", "csv or jsonl")
	pattern := fs.String("tag", "", "only tags matching this filter, MQTT-style as in the API and match: lists (plant/+/speed, plant/#), or a glob per path segment (plant/line1/*); default every tag")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 1 {
			fmt.Fprintln(stderr, "weir history export: at most one DIR")
			return errUsage
		}
		if *format != "csv" && *format != "jsonl" {
			fmt.Fprintf(stderr, "weir history export: -format must be csv or jsonl, got %q\n", *format)
			return errUsage
		}
		keep, err := tagFilter(*pattern)
		if err != nil {
			fmt.Fprintf(stderr, "weir history export: -tag %q: %v\n", *pattern, err)
			return errUsage
		}
		var from, to int64 = 0, 1<<63 - 1
		for _, t := range []struct {
			name, s string
			into    *int64
		}{{"from", *fromS, &from}, {"to", *toS, &to}} {
			if t.s == "" {
				continue
			}
			v, err := time.Parse(time.RFC3339Nano, t.s)
			if err != nil {
				fmt.Fprintf(stderr, "weir history export: -%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q\n", t.name, t.s)
				return errUsage
			}
			*t.into = v.UnixNano()
		}
		if to <= from {
			fmt.Fprintln(stderr, "weir history export: -from must be before -to")
			return errUsage
		}
		dir, err := historianDir(firstNonEmpty(append(pos, *dataDir, localDataDir())...))
		if err != nil {
			return err
		}
		st, err := historian.OpenStore(dir, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		return exportHistory(ctx, st, stdout, *format, *pattern, keep, from, to)
	}
}

// tagFilter compiles -tag: an MQTT-style filter (processors/match: '+'
// one level, '#' the rest), the syntax of the API and of every match:
// list, or, when it holds glob characters (* ? [), a glob per path
// segment (path.Match), which export took first. Empty keeps every tag.
func tagFilter(pattern string) (func(string) bool, error) {
	if pattern == "" {
		return func(string) bool { return true }, nil
	}
	if strings.ContainsAny(pattern, "*?[\\") {
		for _, l := range strings.Split(pattern, "/") {
			if l == "+" || l == "#" {
				return nil, errors.New("use either an MQTT-style filter (+, #) or a glob (*, ?, [...]), not both")
			}
		}
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, err
		}
		return func(tag string) bool { ok, _ := path.Match(pattern, tag); return ok }, nil
	}
	m, err := match.Compile([]string{pattern})
	if err != nil {
		return nil, err
	}
	return m.Match, nil
}

// historianDir is DIR/historian when DIR holds one, else DIR itself when
// it holds day files. Nothing is created.
func historianDir(dir string) (string, error) {
	if st, err := os.Stat(filepath.Join(dir, "historian")); err == nil && st.IsDir() {
		return filepath.Join(dir, "historian"), nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: not a directory", dir)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.db")); len(m) == 0 {
		return "", fmt.Errorf("%s: no historian here (neither DIR/historian nor day files); give the data dir or the historian's dir", dir)
	}
	return dir, nil
}

// exportHistory writes every matching tag's samples in [from, to), tag by
// tag in path order, each oldest first.
//
// A -tag that matches no tag is an error (before any output): an export
// of only the header would look like an empty history.
func exportHistory(ctx context.Context, st *historian.Store, w io.Writer, format, pattern string, keep func(string) bool, from, to int64) error {
	all, err := st.Tags(ctx)
	if err != nil {
		return err
	}
	var tags []string
	for _, tag := range all {
		if keep(tag) {
			tags = append(tags, tag)
		}
	}
	if pattern != "" && len(tags) == 0 {
		return fmt.Errorf("-tag %q matches none of the historian's %d tags (filters: plant/+/speed, plant/#; globs: plant/*/speed)", pattern, len(all))
	}
	bw := bufio.NewWriter(w)
	var emit func(model.Sample) error
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write([]string{"time", "tag", "value", "quality", "reason"}); err != nil {
			return err
		}
		emit = func(s model.Sample) error {
			v := s.Value.AsString()
			if s.Value.Kind() != model.KindString {
				v = string(s.Value.AppendJSON(nil))
			}
			return cw.Write([]string{model.Time(s.SourceTime).Format(time.RFC3339Nano), s.Path, v, s.Quality.Code.String(), s.Quality.Reason})
		}
	} else {
		enc := json.NewEncoder(bw)
		emit = func(s model.Sample) error {
			return enc.Encode(struct {
				Time    string          `json:"time"`
				Tag     string          `json:"tag"`
				Value   json.RawMessage `json:"value"`
				Quality string          `json:"quality"`
				Reason  string          `json:"reason,omitempty"`
			}{model.Time(s.SourceTime).Format(time.RFC3339Nano), s.Path, s.Value.AppendJSON(nil), s.Quality.Code.String(), s.Quality.Reason})
		}
	}
	for _, tag := range tags {
		if err := exportTag(ctx, st, tag, from, to, emit); err != nil {
			return err
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// exportTag pages through one tag. A tag holds one sample per time (the
// store keeps the last written), so the next page starts just after the
// last time of a full one.
func exportTag(ctx context.Context, st *historian.Store, tag string, from, to int64, emit func(model.Sample) error) error {
	for from < to {
		page, err := st.Raw(ctx, tag, from, to, historyPage)
		if err != nil {
			return err
		}
		next := to
		if len(page) == historyPage {
			next = page[len(page)-1].SourceTime + 1
		}
		for _, s := range page {
			if err := emit(s); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		from = next
	}
	return nil
}
