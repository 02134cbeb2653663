package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// The buffer command inspects the durable buffers of a stopped gateway (a
// running one holds their locks, and each store is then reported as in
// use). DIR is the gateway's data dir or its buffers/ directory.
//
//	weir buffer [list] [DIR]                 list stores (read-only)
//	weir buffer export [DIR] SINK > b.jsonl  deliver by hand (read-only)
//	weir buffer purge [-yes] [DIR] SINK      delete the backlog
//	weir buffer dead [-export] [DIR] SINK    dead letters per cause (read-only)
//	weir buffer replay [-yes] [DIR] SINK     dead letters back into the buffer
//
// An operator may point it at the wrong directory: list and export open
// stores read-only and refuse what is not a Weir store, so they never
// create or change a byte; purge asks on a terminal, or needs -yes.
func bufferVerbs() []verb {
	return []verb{
		{name: "list", args: "[flags] [DIR]", summary: "list the buffer stores of a data dir (read-only)", define: defineBufferList},
		{name: "export", args: "[flags] [DIR] SINK", summary: "write a sink's held samples to stdout as JSON lines, oldest first (read-only)", define: defineBufferExport},
		{name: "purge", args: "[flags] [DIR] SINK", summary: "delete every sample held for a sink (asks first, or -yes)", define: defineBufferPurge},
		{name: "dead", args: "[flags] [DIR] SINK", summary: "a sink's dead letters (samples its destination refused for good) per cause; -export writes them as JSON lines (read-only)", define: defineBufferDead},
		{name: "replay", args: "[flags] [DIR] SINK", summary: "move a sink's dead letters back into its buffer, once their cause is fixed (asks first, or -yes)", define: defineBufferReplay},
	}
}

// bufferDirFlags are the ways to name the directory: DIR, --data-dir, or
// the old -dir (the buffers/ directory itself).
type bufferDirFlags struct{ dataDir, dir string }

func (d *bufferDirFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&d.dataDir, "data-dir", "", "the gateway's data dir (default "+config.DefaultDataDir+", or the demo's when that does not exist); same as DIR")
	fs.StringVar(&d.dir, "dir", "", "the buffers directory, DATA_DIR/buffers (old form of DIR)")
}

// resolve returns the buffers directory from DIR or the flags: a data
// dir holding buffers/ means its buffers/; anything else is taken as a
// buffers directory itself. Nothing is created.
func (d *bufferDirFlags) resolve(arg string) (string, error) {
	dir := firstNonEmpty(arg, d.dir, d.dataDir, localDataDir())
	st, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: not a directory", dir)
	}
	if st, err := os.Stat(filepath.Join(dir, "buffers")); err == nil && st.IsDir() {
		return filepath.Join(dir, "buffers"), nil
	}
	return dir, nil
}

func defineBufferList(fs *flag.FlagSet) body {
	var d bufferDirFlags
	d.define(fs)
	// The old flag form: weir buffer -dir D -sink S [-export] [-purge -yes].
	sink := fs.String("sink", "", "old form: the sink for -export and -purge, or the one store to list")
	export := fs.Bool("export", false, "old form of weir buffer export")
	purge := fs.Bool("purge", false, "old form of weir buffer purge")
	yes := fs.Bool("yes", false, "old form: confirm -purge")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 1 {
			fmt.Fprintln(stderr, "weir buffer list: one DIR at most")
			return errUsage
		}
		arg := ""
		if len(pos) == 1 {
			arg = pos[0]
		}
		if (*export || *purge) && *sink == "" {
			fmt.Fprintln(stderr, "weir buffer: -export and -purge need -sink NAME")
			return errUsage
		}
		dir, err := d.resolve(arg)
		if err != nil {
			return err
		}
		if *export {
			if err := exportStore(stdout, stderr, dir, *sink); err != nil {
				return err
			}
		}
		if *purge {
			return purgeStore(stderr, dir, *sink, *yes)
		}
		if *export {
			return nil
		}
		var names []string
		if *sink != "" {
			names = []string{*sink}
		}
		return listStores(stdout, dir, names)
	}
}

// sinkArgs splits [DIR] SINK.
// sinkIn is the store directory and sink name of a verb that works on one
// sink ([DIR] SINK), DIR resolved as resolve does.
func (d *bufferDirFlags) sinkIn(verb string, pos []string, stderr io.Writer) (dir, sink string, err error) {
	arg, sink, err := sinkArgs(verb, pos, stderr)
	if err != nil {
		return "", "", err
	}
	if err := checkSinkName(sink); err != nil {
		return "", "", err
	}
	dir, err = d.resolve(arg)
	return dir, sink, err
}

// checkSinkName refuses a sink name that would leave the buffers directory.
func checkSinkName(sink string) error {
	if sink == "" || sink != filepath.Base(sink) || sink == "." || sink == ".." {
		return fmt.Errorf("sink %q: not a sink name", sink)
	}
	return nil
}

func sinkArgs(verb string, pos []string, stderr io.Writer) (dir, sink string, err error) {
	switch len(pos) {
	case 1:
		return "", pos[0], nil
	case 2:
		return pos[0], pos[1], nil
	}
	fmt.Fprintf(stderr, "weir buffer %s: want [DIR] SINK\n", verb)
	return "", "", errUsage
}

func defineBufferExport(fs *flag.FlagSet) body {
	var d bufferDirFlags
	d.define(fs)
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		dir, sink, err := d.sinkIn("export", pos, stderr)
		if err != nil {
			return err
		}
		return exportStore(stdout, stderr, dir, sink)
	}
}

func defineBufferPurge(fs *flag.FlagSet) body {
	var d bufferDirFlags
	d.define(fs)
	yes := fs.Bool("yes", false, "do not ask: delete (needed when not on a terminal)")
	return func(_ context.Context, pos []string, _, stderr io.Writer) error {
		dir, sink, err := d.sinkIn("purge", pos, stderr)
		if err != nil {
			return err
		}
		return purgeStore(stderr, dir, sink, *yes)
	}
}

// openStore opens the store of sink under dir read-only.
func openStore(dir, sink string) (*durable.Buffer, error) {
	if err := checkSinkName(sink); err != nil {
		return nil, err
	}
	b, err := durable.OpenReadOnly(filepath.Join(dir, sink), newQuietLogger(io.Discard))
	if err != nil {
		return nil, storeErr(err, dir, sink)
	}
	return b, nil
}

func exportStore(stdout, stderr io.Writer, dir, sink string) error {
	b, err := openStore(dir, sink)
	if err != nil {
		return err
	}
	defer b.Release()
	w := bufio.NewWriterSize(stdout, 64<<10)
	var line []byte
	n := 0
	err = b.Each(func(s model.Sample) error {
		line = appendExport(line[:0], s)
		n++
		_, err := w.Write(line)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", sink, err)
	}
	fmt.Fprintf(stderr, "exported %d samples of %s\n", n, sink)
	return b.Release()
}

// confirmInput is where purge reads its confirmation, and whether that is
// a terminal; a variable so that tests can answer.
var confirmInput = func() (io.Reader, bool) {
	// A terminal, not just a character device: </dev/null is one too.
	return os.Stdin, term.IsTerminal(int(os.Stdin.Fd()))
}

// purgeStore deletes what the store of sink holds, after a read-only look
// that proves it is a Weir store, and a confirmation.
func purgeStore(stderr io.Writer, dir, sink string, yes bool) error {
	ro, err := openStore(dir, sink)
	if err != nil {
		return err
	}
	held := ro.Stats().Depth
	if err := ro.Release(); err != nil {
		return err
	}
	path := filepath.Join(dir, sink)
	if !yes {
		in, tty := confirmInput()
		if !tty {
			fmt.Fprintf(stderr, "weir buffer purge: this deletes %d samples of %s that were never delivered; confirm on a terminal or add -yes\n", held, sink)
			return errUsage
		}
		fmt.Fprintf(stderr, "Delete the %d samples held for sink %s in %s? They were never delivered.\nType the sink name to confirm: ", held, sink, path)
		answer, _ := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(answer) != sink {
			fmt.Fprintln(stderr, "not confirmed; nothing deleted")
			return errUsage
		}
	}
	b, err := durable.Open(durable.Config{Dir: path, Fsync: durable.FsyncAlways}, newQuietLogger(stderr))
	if err != nil {
		return storeErr(err, dir, sink)
	}
	defer b.Release()
	n, err := b.Purge()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "purged %d samples of %s\n", n, sink)
	return b.Release()
}

// appendExport writes one JSON line: the sink payload of s with its path
// in front. The payload already carries "historical":true for a replayed
// sample, so the flag is not added again (duplicate keys are invalid for
// strict JSON readers).
func appendExport(dst []byte, s model.Sample) []byte {
	dst = append(dst, `{"path":`...)
	dst = model.AppendJSONString(dst, s.Path)
	dst = append(dst, ',')
	start := len(dst)
	dst = payload.AppendSample(dst, s)
	dst = append(dst[:start], dst[start+1:len(dst)-1]...) // payload without its braces
	return append(dst, "}\n"...)
}

// storeErr says in the operator's words why the store of sink did not open.
func storeErr(err error, dir, sink string) error {
	switch {
	case errors.Is(err, durable.ErrLocked):
		return fmt.Errorf("sink %s: the store is in use by a running weir; stop it first", sink)
	case errors.Is(err, durable.ErrNotStore), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("sink %s: no Weir buffer store at %s (%v); weir buffer list %s shows the stores", sink, filepath.Join(dir, sink), err, dir)
	}
	return fmt.Errorf("sink %s: %w", sink, err)
}

// listStores prints one line per store under dir (or the named ones),
// opening each read-only. A directory holding no store is refused.
func listStores(w io.Writer, dir string, names []string) error {
	if names == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() || strings.Contains(e.Name(), ".corrupt-") || strings.HasSuffix(e.Name(), ".salvage") {
				continue
			}
			if durable.IsStore(filepath.Join(dir, e.Name())) == nil {
				names = append(names, e.Name())
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("no Weir buffer stores in %s: give the gateway's data dir (data_dir, default %s) or its buffers/ directory", dir, config.DefaultDataDir)
		}
		sort.Strings(names)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSAMPLES\tBYTES\tOLDEST\tSTATE")
	now := time.Now()
	for _, name := range names {
		b, err := durable.OpenReadOnly(filepath.Join(dir, name), newQuietLogger(io.Discard))
		if err != nil {
			state := "error: " + err.Error()
			switch {
			case errors.Is(err, durable.ErrLocked):
				state = "in use by a running weir"
			case errors.Is(err, durable.ErrNotStore), errors.Is(err, os.ErrNotExist):
				state = "not a buffer store"
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
		if st.DroppedCorrupt > 0 {
			state = fmt.Sprintf("%d corrupt samples (a gateway opening it drops them)", st.DroppedCorrupt)
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
