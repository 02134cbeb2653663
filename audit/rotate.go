package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Rotation keeps the trail's disk use bounded without breaking the chain.
// When an entry would take the active file past max_bytes, the file is
// renamed STEM.<seq of its first entry>.EXT (writes.jsonl →
// writes.00000000000000000001.jsonl; twenty digits, so names sort in
// chain order) and the entry starts a new active file. Its seq and
// prev_hash continue from the renamed file's last entry, so the files form
// one chain, and Verify walks them in order.

// seqDigits is the width of the seq in a rotated file's name: every
// uint64 fits, so the names sort as the numbers do.
const seqDigits = 20

// tailWindow is how much of a rotated file's end is read for its newest
// lines: at Open, to fill the tail ring, and before a file is deleted, to
// log its last hash. Far more than TailSize lines of usual size.
const tailWindow = 2 << 20

// rotatedFile is one rotated file of a trail.
type rotatedFile struct {
	path string
	seq  uint64 // of its first entry, from its name
}

// rotatedName is the name the active file takes when rotated with its
// first entry at seq.
func rotatedName(active string, seq uint64) string {
	base := filepath.Base(active)
	ext := filepath.Ext(base)
	name := fmt.Sprintf("%s.%0*d%s", strings.TrimSuffix(base, ext), seqDigits, seq, ext)
	return filepath.Join(filepath.Dir(active), name)
}

// rotatedFiles lists the rotated files of the trail whose active file is
// active, oldest first. Side files (FILE.torn-…) and anything not named
// exactly like a rotated file are ignored.
func rotatedFiles(active string) ([]rotatedFile, error) {
	dir, base := filepath.Dir(active), filepath.Base(active)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "."
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []rotatedFile
	// ReadDir sorts by name, and equal-width numbers sort as names.
	for _, de := range ents {
		name := de.Name()
		if len(name) != len(prefix)+seqDigits+len(ext) || !strings.HasPrefix(name, prefix) ||
			!strings.HasSuffix(name, ext) || !de.Type().IsRegular() {
			continue
		}
		if seq, ok := parseSeq(name[len(prefix) : len(prefix)+seqDigits]); ok {
			out = append(out, rotatedFile{path: filepath.Join(dir, name), seq: seq})
		}
	}
	return out, nil
}

// asRotated reports whether path is itself named like a rotated file
// (STEM.<20 digits>.EXT or STEM.<20 digits>), and the seq in its name.
func asRotated(path string) (uint64, bool) {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	if seq, ok := parseSeq(strings.TrimPrefix(ext, ".")); ok {
		return seq, true
	}
	return parseSeq(strings.TrimPrefix(filepath.Ext(strings.TrimSuffix(base, ext)), "."))
}

func parseSeq(s string) (uint64, bool) {
	if len(s) != seqDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

// rotate renames the full active file to its rotated name and opens a new,
// empty active file. Called with l.mu held, with the active file non-empty
// and synced (every entry is).
//
// A crash between any two steps leaves a state Open continues from
// without losing or repeating an entry: before the rename, a full active
// file (the next Append rotates it); after it, no active file or an empty
// one, and Open continues the chain from the newest rotated file. The
// directory is synced before the new file takes an entry, so that an
// acknowledged entry never sits in a file whose name a power cut undoes.
func (l *Log) rotate() error {
	if l.firstSeq == 0 {
		return errors.New("seq of the active file's first entry unknown")
	}
	name := rotatedName(l.path, l.firstSeq)
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("%s already exists", name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return err
	}
	if err := os.Rename(l.path, name); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		f.Close()
		return err
	}
	l.log.Info("audit trail rotated", "file", name, "first_seq", l.firstSeq, "last_seq", l.seq, "last_hash", l.last)
	l.f, l.size, l.firstSeq = f, 0, 0
	l.prune()
	return nil
}

// prune deletes the oldest rotated files beyond max_files: the bound on
// disk use the configuration asks for. Each deletion is logged with the
// file's last seq and hash, which the next file's first entry carries as
// prev_hash, so the kept chain can still be tied to a copy of the deleted
// file kept elsewhere. Failures are logged, not returned: the trail is
// intact, only larger than asked.
//
// With checkpoints, a file is deleted only when the last published
// checkpoint covers its last entry: otherwise nobody outside the box
// holds proof of what it said, and a flood of entries could push it away
// unseen. Such files are kept beyond max_files (Stats.HeldFiles) and an
// AuditProblem raised when their count grows — an alarm instead of a
// silent loss. They go at a later rotation, once covered.
func (l *Log) prune() {
	if l.maxFiles < 0 {
		return
	}
	files, err := rotatedFiles(l.path)
	if err != nil {
		l.log.Warn("audit trail: cannot list rotated files to delete the oldest", "file", l.path, "error", err)
		return
	}
	extra := files[:max(len(files)-l.maxFiles, 0)]
	held := 0
	for i, old := range extra {
		if l.cp.on {
			// The last seq of a rotated file is one below the first of
			// the next file (rotated, or the active one).
			last := l.seq
			if i+1 < len(files) {
				last = files[i+1].seq - 1
			} else if l.firstSeq > 0 {
				last = l.firstSeq - 1
			}
			if last > l.cp.seq {
				held = len(extra) - i
				break
			}
		}
		attrs := []any{"file", old.path, "first_seq", old.seq}
		if lines, err := readTailLines(old.path, 1); err == nil && len(lines) == 1 {
			if e, err := ParseLine(lines[0]); err == nil {
				attrs = append(attrs, "last_seq", e.Seq, "last_hash", e.Hash)
			}
		}
		if err := os.Remove(old.path); err != nil {
			l.log.Warn("audit trail: cannot delete the oldest rotated file", "file", old.path, "error", err)
			return
		}
		l.log.Info("audit trail: deleted the oldest rotated file (max_files)", attrs...)
	}
	l.cp.stats.HeldFiles = held
	// Raised when files start to be held, and again each time their
	// count doubles: an alarm, not an event per rotation.
	if held > 0 && (l.cp.heldReported == 0 || held >= 2*l.cp.heldReported) {
		l.problem(fmt.Sprintf("%d rotated files kept beyond max_files %d: they hold entries after seq %d, the last published checkpoint (entries arriving faster than checkpoints; a flood?)",
			held, l.maxFiles, l.cp.seq))
		l.cp.heldReported = held
	}
	if held == 0 {
		l.cp.heldReported = 0
	}
}

// readTailLines returns up to n of the last complete lines of a file
// (without newlines), oldest first, reading no more than tailWindow bytes
// from its end. A file that does not end in a newline is an error: a
// rotated file is complete.
func readTailLines(path string, n int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-tailWindow, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := io.ReadFull(io.NewSectionReader(f, off, int64(len(buf))), buf); err != nil {
		return nil, err
	}
	if len(buf) == 0 || n <= 0 {
		return nil, nil
	}
	if buf[len(buf)-1] != '\n' {
		return nil, errors.New("ends in an incomplete line")
	}
	if off > 0 { // drop the partial line the window starts in
		i := bytes.IndexByte(buf, '\n')
		buf = buf[i+1:]
	}
	var lines [][]byte
	for len(buf) > 0 && len(lines) < n {
		buf = buf[:len(buf)-1]
		i := bytes.LastIndexByte(buf, '\n')
		lines = append(lines, bytes.Clone(buf[i+1:]))
		buf = buf[:i+1]
	}
	slices.Reverse(lines)
	return lines, nil
}

// syncDir makes the names in dir durable: a created or renamed file.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
