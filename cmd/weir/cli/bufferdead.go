package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
)

// The dead-letter verbs: a sink's dead letters are the samples its
// destination refused for good (an invalid topic, an oversize message…),
// kept per cause in DATA_DIR/buffers/<sink>.dead/<cause>, each an ordinary
// buffer store.
//
//	weir buffer dead [DIR] SINK            how many, per cause (read-only)
//	weir buffer dead -export [DIR] SINK    the dead letters as JSON lines, with "cause"
//	weir buffer replay [-yes] [DIR] SINK   move them back into the sink's buffer

func defineBufferDead(fs *flag.FlagSet) body {
	var d bufferDirFlags
	d.define(fs)
	export := fs.Bool("export", false, "write the dead letters to stdout as JSON lines (with their cause), oldest first per cause")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		dir, sink, err := d.sinkIn("dead", pos, stderr)
		if err != nil {
			return err
		}
		if *export {
			return exportDead(stdout, stderr, dir, sink)
		}
		return listDead(stdout, dir, sink)
	}
}

func defineBufferReplay(fs *flag.FlagSet) body {
	var d bufferDirFlags
	d.define(fs)
	yes := fs.Bool("yes", false, "do not ask (needed when not on a terminal)")
	cause := fs.String("cause", "", "replay only the dead letters of this cause (default all)")
	return func(_ context.Context, pos []string, _, stderr io.Writer) error {
		dir, sink, err := d.sinkIn("replay", pos, stderr)
		if err != nil {
			return err
		}
		return replayDead(stderr, dir, sink, *cause, *yes)
	}
}

// deadDir returns the dead-letter directory of sink and its causes.
func deadDir(dir, sink string) (string, []string, error) {
	if err := checkSinkName(sink); err != nil {
		return "", nil, err
	}
	dd := durable.DeadLetterDir(filepath.Join(dir, sink))
	causes, err := durable.DeadLetterCauses(dd)
	return dd, causes, err
}

// openDead opens one cause's store read-only.
func openDead(dd, sink, cause string) (*durable.Buffer, error) {
	b, err := durable.OpenReadOnly(filepath.Join(dd, cause), newQuietLogger(io.Discard))
	if err != nil {
		return nil, storeErr(err, dd, sink+" dead letters "+cause)
	}
	return b, nil
}

func listDead(w io.Writer, dir, sink string) error {
	dd, causes, err := deadDir(dir, sink)
	if err != nil {
		return err
	}
	if len(causes) == 0 {
		fmt.Fprintf(w, "no dead letters for sink %s (%s)\n", sink, dd)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAUSE\tSAMPLES\tBYTES\tOLDEST")
	now := time.Now()
	for _, c := range causes {
		b, err := openDead(dd, sink, c)
		if err != nil {
			return err
		}
		st := b.Stats()
		_ = b.Release()
		oldest := "-"
		if st.Depth > 0 && st.OldestEdgeTime != 0 {
			oldest = now.Sub(model.Time(st.OldestEdgeTime)).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c, st.Depth, st.Bytes, oldest)
	}
	return tw.Flush()
}

// exportDead writes every dead letter as an export line with its cause
// first: {"cause":"invalid_name","path":…}.
func exportDead(stdout, stderr io.Writer, dir, sink string) error {
	dd, causes, err := deadDir(dir, sink)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	var line []byte
	n := 0
	for _, c := range causes {
		b, err := openDead(dd, sink, c)
		if err != nil {
			return err
		}
		err = b.Each(func(s model.Sample) error {
			line = append(line[:0], `{"cause":`...)
			line = model.AppendJSONString(line, c)
			line = append(line, ',')
			start := len(line)
			line = appendExport(line, s)
			line = append(line[:start], line[start+1:]...) // without the export line's own '{'
			n++
			_, err := w.Write(line)
			return err
		})
		if rerr := b.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("export dead letters of %s: %w", sink, err)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d dead letters of %s\n", n, sink)
	return nil
}

// replayDead moves dead letters back into the sink's buffer, for another
// try after the cause was fixed. The gateway must be stopped: the sink's
// buffer store is opened for writing, which fails while a running weir
// holds it. Each cause is appended to the buffer and synced before its
// dead letters are purged, so a crash in between duplicates (replayed
// again next time) but never loses.
func replayDead(stderr io.Writer, dir, sink, only string, yes bool) error {
	dd, causes, err := deadDir(dir, sink)
	if err != nil {
		return err
	}
	if only != "" {
		found := false
		for _, c := range causes {
			found = found || c == only
		}
		if !found {
			return fmt.Errorf("sink %s: no dead letters of cause %q in %s", sink, only, dd)
		}
		causes = []string{only}
	}
	if len(causes) == 0 {
		fmt.Fprintf(stderr, "no dead letters for sink %s\n", sink)
		return nil
	}
	if err := durable.IsStore(filepath.Join(dir, sink)); err != nil {
		return storeErr(err, dir, sink)
	}
	if !yes {
		in, tty := confirmInput()
		if !tty {
			fmt.Fprintf(stderr, "weir buffer replay: this sends the dead letters of %s (%s) again; confirm on a terminal or add -yes\n", sink, strings.Join(causes, ", "))
			return errUsage
		}
		fmt.Fprintf(stderr, "Move the dead letters of sink %s (%s) back into its buffer? Fix what the destination refused first.\nType the sink name to confirm: ", sink, strings.Join(causes, ", "))
		answer, _ := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(answer) != sink {
			fmt.Fprintln(stderr, "not confirmed; nothing moved")
			return errUsage
		}
	}
	main, err := durable.Open(durable.Config{Dir: filepath.Join(dir, sink), Fsync: durable.FsyncAlways}, newQuietLogger(stderr))
	if err != nil {
		return storeErr(err, dir, sink)
	}
	defer main.Release()
	total := 0
	for _, c := range causes {
		n, err := replayCause(main, filepath.Join(dd, c), stderr)
		total += n
		if err != nil {
			if errors.Is(err, durable.ErrLocked) {
				return fmt.Errorf("sink %s: the dead letters are in use by a running weir; stop it first", sink)
			}
			return fmt.Errorf("replay dead letters %s of %s: %w", c, sink, err)
		}
		fmt.Fprintf(stderr, "replayed %d dead letters (%s) into the buffer of %s\n", n, c, sink)
	}
	if total > 0 {
		fmt.Fprintf(stderr, "they are delivered when the gateway starts again; if the cause is not fixed they come back here\n")
	}
	return main.Release()
}

// replayCause pushes the samples of one cause's store into main, then
// purges the store.
func replayCause(main *durable.Buffer, path string, stderr io.Writer) (int, error) {
	b, err := durable.Open(durable.Config{Dir: path, Fsync: durable.FsyncAlways}, newQuietLogger(stderr))
	if err != nil {
		return 0, err
	}
	defer b.Release()
	var batch []model.Sample
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := main.Push(context.Background(), batch)
		batch = batch[:0]
		return err
	}
	n := 0
	err = b.Each(func(s model.Sample) error {
		batch = append(batch, s)
		n++
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, err
	}
	if _, err := b.Purge(); err != nil {
		return n, err
	}
	return n, b.Release()
}
