package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// Config is the `audit:` block.
type Config struct {
	// File is the trail, a JSON-lines file; it and its directory are
	// created when missing.
	File string `yaml:"file"`
	// Key, when set, makes the chain an HMAC-SHA-256 chain under this key
	// ({env: NAME} or {file: PATH}): without the key nobody can rewrite the
	// file consistently. Without it the chain is plain SHA-256, which shows
	// edits but not a rewrite of the whole tail.
	Key conf.Secret `yaml:"key"`
}

// Validate checks the block as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.File == "" {
		errs.Addf("file", "is required (path of the audit trail)")
	}
	if err := c.Key.Validate(); err != nil {
		errs.Addf("key", "%w", err)
	}
	return errs.Err()
}

// TailSize is how many of the newest entries a Log keeps in memory for
// Tail (the HTTP API's audit view).
const TailSize = 1000

// maxLine bounds one line of the trail; a longer one is corrupt.
const maxLine = 1 << 20

// Log is an open trail. Append is safe for concurrent use.
type Log struct {
	path string
	h    hasher
	log  *slog.Logger
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	seq  uint64
	last string   // hash of the newest entry (Genesis when empty)
	tail [][]byte // ring of the newest lines, oldest first once full
	head int      // next slot of tail to overwrite once full
	err  error    // sticky: the file may hold a partial line
	buf  []byte
}

// Open opens (or creates) the trail and continues its chain. It checks the
// newest entry's own hash, so the chain continues from an authentic entry;
// the whole chain is checked by Verify (`weir audit verify`), which Open
// does not do so that a long trail does not slow every start.
//
// A last line without its newline (a crash in the middle of a write, as
// every entry is synced before the next one starts) is moved to
// FILE.torn-UNIXNANO and cut from the trail, with a warning. Any other
// problem with the newest entry (a bad hash, a different key) refuses to
// open: writes to OT then stay impossible until someone looks.
func Open(cfg Config, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	key, err := cfg.Key.Resolve()
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	l := &Log{path: cfg.File, h: hasher{key: []byte(key)}, log: log, now: time.Now, last: Genesis}
	if err := os.MkdirAll(filepath.Dir(cfg.File), 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(cfg.File, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := l.load(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", cfg.File, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.f = f
	return l, nil
}

// load reads the existing lines into the tail ring, cuts a torn last line
// and checks the newest entry.
func (l *Log) load(f *os.File) error {
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64 // offset after the last complete line
	lineNo := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lineNo++
			off += int64(len(line))
			l.remember(bytes.Clone(line[:len(line)-1]))
		} else if len(line) > 0 {
			if terr := l.cutTorn(f, off, line); terr != nil {
				return terr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(line) > maxLine {
			return &VerifyError{Line: lineNo, Err: errors.New("line longer than 1 MiB")}
		}
	}
	if lineNo == 0 {
		return nil
	}
	newest := l.tail[(l.head+len(l.tail)-1)%len(l.tail)]
	e, err := l.check(newest)
	if err != nil {
		return fmt.Errorf("newest entry (line %d) fails verification, run `weir audit verify`: %w", lineNo, err)
	}
	l.seq, l.last = e.Seq, e.Hash
	return nil
}

// cutTorn preserves a torn last line in a side file and truncates it.
func (l *Log) cutTorn(f *os.File, off int64, torn []byte) error {
	side := l.path + ".torn-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.WriteFile(side, torn, 0o640); err != nil {
		return fmt.Errorf("save torn last line: %w", err)
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("cut torn last line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	l.log.Warn("audit trail ended in an incomplete line (crash during a write?); moved it aside",
		"file", l.path, "saved_to", side, "bytes", len(torn))
	return nil
}

// check parses a line and verifies its own hash.
func (l *Log) check(line []byte) (Entry, error) {
	e, err := ParseLine(line)
	if err != nil {
		return Entry{}, err
	}
	canon, err := canonicalOf(line, e.Hash)
	if err != nil {
		return Entry{}, err
	}
	if l.h.sum(canon) != e.Hash {
		return Entry{}, errors.New("hash mismatch (entry changed, or a different key)")
	}
	return e, nil
}

// remember keeps line in the tail ring.
func (l *Log) remember(line []byte) {
	if len(l.tail) < TailSize {
		l.tail = append(l.tail, line)
		return
	}
	l.tail[l.head] = line
	l.head = (l.head + 1) % TailSize
}

// Append assigns the entry its sequence number, time (when zero) and
// chain hashes, writes it as one line and syncs the file before
// returning: an entry that Append accepted survives a power cut. Writes to
// OT are rare (rate-limited per tag), so a sync per entry costs little.
//
// After a failed write or sync the file may end in a partial line, so the
// Log refuses every further Append (Err reports why) until it is reopened,
// which cuts the partial line. The write gate refuses writes while the
// trail is broken: no write goes unrecorded.
func (l *Log) Append(e Entry) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return Entry{}, l.err
	}
	if l.f == nil {
		return Entry{}, errors.New("audit: log is closed")
	}
	e.Seq = l.seq + 1
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	e.PrevHash = l.last
	l.buf = appendCanonical(l.buf[:0], &e)
	e.Hash = l.h.sum(l.buf)
	l.buf = appendLine(l.buf[:0], &e)
	l.buf = append(l.buf, '\n')
	if _, err := l.f.Write(l.buf); err != nil {
		l.err = fmt.Errorf("audit: write %s: %w", l.path, err)
		return Entry{}, l.err
	}
	if err := l.f.Sync(); err != nil {
		l.err = fmt.Errorf("audit: sync %s: %w", l.path, err)
		return Entry{}, l.err
	}
	l.seq, l.last = e.Seq, e.Hash
	l.remember(bytes.Clone(l.buf[:len(l.buf)-1]))
	return e, nil
}

// Err reports why the Log refuses appends, nil when it works.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && l.err == nil {
		return errors.New("audit: log is closed")
	}
	return l.err
}

// Tail returns up to n of the newest entries (at most TailSize), oldest
// first.
func (l *Log) Tail(n int) ([]Entry, error) {
	l.mu.Lock()
	lines := make([][]byte, 0, len(l.tail))
	lines = append(lines, l.tail[l.head:]...)
	lines = append(lines, l.tail[:l.head]...)
	l.mu.Unlock()
	if n < len(lines) {
		lines = lines[len(lines)-max(n, 0):]
	}
	out := make([]Entry, 0, len(lines))
	for _, line := range lines {
		e, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("audit: tail: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Close closes the file. Appends after Close fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
