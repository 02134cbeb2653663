package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// bufferCmd inspects the durable buffers of a stopped gateway (a running
// one holds their locks, and each store is then reported as in use):
//
//	weir buffer -dir DATA_DIR/buffers                     list stores
//	weir buffer -dir … -sink NAME -export > backlog.jsonl deliver by hand
//	weir buffer -dir … -sink NAME -purge -yes             delete the backlog
func bufferCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("buffer", stderr)
	dir := fs.String("dir", "", "the buffers directory: DATA_DIR/buffers (required)")
	sink := fs.String("sink", "", "the sink whose store -export and -purge act on")
	export := fs.Bool("export", false, "write the held samples to stdout as JSON lines, oldest first")
	purge := fs.Bool("purge", false, "delete every held sample (with -yes; after -export if both)")
	yes := fs.Bool("yes", false, "confirm -purge")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "weir buffer: -dir DATA_DIR/buffers is required")
		return errUsage
	}
	if !*export && !*purge {
		if *sink != "" {
			return listStores(stdout, *dir, []string{*sink})
		}
		return listStores(stdout, *dir, nil)
	}
	if *sink == "" {
		fmt.Fprintln(stderr, "weir buffer: -export and -purge need -sink NAME")
		return errUsage
	}
	if *purge && !*yes {
		fmt.Fprintln(stderr, "weir buffer: -purge deletes data that was never delivered; add -yes to confirm")
		return errUsage
	}
	path := filepath.Join(*dir, *sink)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sink %s: %w", *sink, err)
	}
	b, err := durable.Open(durable.Config{Dir: path, Fsync: durable.FsyncAlways}, newQuietLogger(stderr))
	if err != nil {
		return inUse(err, *sink)
	}
	defer b.Release()
	if *export {
		w := bufio.NewWriterSize(stdout, 64<<10)
		var line []byte
		n := 0
		err := b.Each(func(s model.Sample) error {
			line = appendExport(line[:0], s)
			n++
			_, err := w.Write(line)
			return err
		})
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", *sink, err)
		}
		fmt.Fprintf(stderr, "exported %d samples of %s\n", n, *sink)
	}
	if *purge {
		n, err := b.Purge()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "purged %d samples of %s\n", n, *sink)
	}
	return b.Release()
}

// appendExport writes one JSON line: the sink payload of s with its path
// and the historical flag.
func appendExport(dst []byte, s model.Sample) []byte {
	dst = append(dst, `{"path":`...)
	dst = model.AppendJSONString(dst, s.Path)
	dst = append(dst, ',')
	start := len(dst)
	dst = payload.AppendSample(dst, s)
	dst = append(dst[:start], dst[start+1:len(dst)-1]...) // payload without its braces
	if s.Historical {
		dst = append(dst, `,"historical":true`...)
	}
	return append(dst, "}\n"...)
}

func inUse(err error, sink string) error {
	if errors.Is(err, durable.ErrLocked) {
		return fmt.Errorf("sink %s: the store is in use by a running weir; stop it first", sink)
	}
	return fmt.Errorf("sink %s: %w", sink, err)
}

// listStores prints one line per store under dir (or the named ones).
func listStores(w io.Writer, dir string, names []string) error {
	if names == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() && !strings.Contains(e.Name(), ".corrupt-") && !strings.HasSuffix(e.Name(), ".salvage") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSAMPLES\tBYTES\tOLDEST\tSTATE")
	now := time.Now()
	for _, name := range names {
		b, err := durable.Open(durable.Config{Dir: filepath.Join(dir, name)}, newQuietLogger(io.Discard))
		if err != nil {
			state := "error: " + err.Error()
			if errors.Is(err, durable.ErrLocked) {
				state = "in use by a running weir"
			}
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", name, state)
			continue
		}
		st := b.Stats()
		_ = b.Release()
		oldest, state := "-", "ok"
		if st.Depth > 0 && st.OldestEdgeTime != 0 {
			oldest = now.Sub(model.Time(st.OldestEdgeTime)).Round(time.Second).String()
		}
		if st.Quarantine != "" {
			state = "corrupt, moved aside to " + st.Quarantine
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", name, st.Depth, st.Bytes, oldest, state)
	}
	if quarantined, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(quarantined) > 0 {
		defer fmt.Fprintf(w, "\n%d quarantined store(s): %s\n", len(quarantined), strings.Join(quarantined, ", "))
	}
	return tw.Flush()
}

func newQuietLogger(w io.Writer) *slog.Logger {
	l, _ := newLogger(w, "warn", "text")
	return l
}
