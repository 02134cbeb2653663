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
	// MaxBytes bounds the active file: an entry that would take it past
	// the bound goes into a new file, and the full one is kept as
	// STEM.<seq of its first entry>.EXT next to it (see rotate.go). The
	// chain continues across files. Default 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxFiles is how many rotated files are kept; the oldest beyond it are
	// deleted, which is what bounds the disk used: at most
	// (max_files+1) × max_bytes. Default 10; -1 keeps every file (the disk
	// use is then unbounded, for trails shipped and removed by other
	// means).
	MaxFiles int `yaml:"max_files"`
	// CheckpointFile is the second location of the trail's head: each
	// signed checkpoint (checkpoint.go) replaces it atomically (0600).
	// Put it on another disk than the trail. Empty: no checkpoints (the
	// gateway sets DATA_DIR/audit-checkpoint/checkpoint.json).
	CheckpointFile string `yaml:"checkpoint_file"`
	// SigningKey is the ed25519 key checkpoints are signed with: a PEM
	// PRIVATE KEY (PKCS #8) or the base64 of a 32-byte seed, as {env: …}
	// or {file: …}. Unset: one is generated on first start in the data
	// directory (GeneratedKeyName, 0600) and its public key logged.
	SigningKey conf.Secret `yaml:"signing_key"`
	// CheckpointEvery takes a checkpoint after this many entries. Default
	// 100.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval takes one this often when entries were added
	// since the last (Run). Default 1m.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Defaults and bounds of the rotation keys.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxFiles = 10
	// MinMaxBytes keeps a dozen entries or so per file.
	MinMaxBytes = 4 << 10

	DefaultCheckpointEvery    = 100
	DefaultCheckpointInterval = time.Minute
)

// Validate checks the block as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.File == "" {
		errs.Addf("file", "is required (path of the audit trail)")
	}
	if err := c.Key.Validate(); err != nil {
		errs.Addf("key", "%w", err)
	}
	if c.MaxBytes < 0 {
		errs.Addf("max_bytes", "must not be negative")
	} else if c.MaxBytes > 0 && c.MaxBytes < MinMaxBytes {
		errs.Addf("max_bytes", "%d is below the minimum of 4 KiB (%d)", c.MaxBytes, MinMaxBytes)
	}
	if c.MaxFiles < -1 {
		errs.Addf("max_files", "%d: want a count of rotated files to keep, or -1 to keep them all", c.MaxFiles)
	}
	if err := c.SigningKey.Validate(); err != nil {
		errs.Addf("signing_key", "%w", err)
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery > 1_000_000 {
		errs.Addf("checkpoint_every", "%d is out of range 0..1000000 (0: default %d)", c.CheckpointEvery, DefaultCheckpointEvery)
	}
	if c.CheckpointInterval != 0 && (c.CheckpointInterval < time.Second || c.CheckpointInterval > 24*time.Hour) {
		errs.Addf("checkpoint_interval", "%s is out of range 1s..24h", c.CheckpointInterval)
	}
	return errs.Err()
}

// setDefaults fills zero values; the one place defaults live.
func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
}

// TailSize is how many of the newest entries a Log keeps in memory for
// Tail (the HTTP API's audit view).
const TailSize = 1000

// maxLine bounds one line of the trail; a longer one is corrupt.
const maxLine = 1 << 20

// Log is an open trail. Append is safe for concurrent use.
type Log struct {
	path     string
	h        hasher
	log      *slog.Logger
	now      func() time.Time
	maxBytes int64
	maxFiles int

	mu       sync.Mutex
	f        *os.File
	size     int64  // bytes in the active file
	firstSeq uint64 // seq of the active file's first entry; 0 while it is empty
	seq      uint64
	last     string   // hash of the newest entry (Genesis when empty)
	tail     [][]byte // ring of the newest lines, oldest first once full
	head     int      // next slot of tail to overwrite once full
	err      error    // sticky: the file may hold a partial line, or a rotation is half done
	buf      []byte

	cp cpState // checkpoints (checkpointer.go)
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
//
// When the active file is missing or empty but rotated files exist (a
// crash in the middle of a rotation), the chain continues from the newest
// rotated file's last entry. Rotated files beyond max_files are deleted.
func Open(cfg Config, log *slog.Logger) (*Log, error) {
	return OpenWith(cfg, Options{Log: log})
}

// OpenWith is Open with checkpoints: when cfg.CheckpointFile is set, the
// head is checked against the last checkpoint (a trail that no longer
// reaches it refuses to open), and a new one is taken at once, then as
// configured (checkpointer.go).
func OpenWith(cfg Config, o Options) (*Log, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	cfg.setDefaults()
	key, err := cfg.Key.Resolve()
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	if cfg.Key.IsSet() && key == "" {
		// Never fall back to the unkeyed chain the operator did not ask
		// for; the message names the reference, never a value.
		return nil, fmt.Errorf("audit: key: %s resolves to an empty value; set it, or remove audit.key for a plain SHA-256 chain", cfg.Key)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	l := &Log{path: cfg.File, h: hasher{key: []byte(key)}, log: log, now: now, last: Genesis,
		maxBytes: cfg.MaxBytes, maxFiles: cfg.MaxFiles}
	if err := l.cp.configure(cfg, o, log); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.File), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(cfg.File, os.O_RDWR|os.O_CREATE, 0o600)
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
	// The file may have just been created: make its name durable before
	// the first entry is acknowledged.
	if err := syncDir(filepath.Dir(cfg.File)); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := l.checkHead(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", cfg.File, err)
	}
	l.f = f
	l.checkpointLocked()
	l.prune()
	return l, nil
}

// load reads the existing lines into the tail ring, cuts a torn last line
// and checks the newest entry. When the active file holds fewer than
// TailSize lines, the ring is topped up from the newest rotated file,
// whose last entry is the one the chain continues from when the active
// file is empty.
func (l *Log) load(f *os.File) error {
	n, first, err := l.readActive(f)
	if err != nil {
		return err
	}
	var newest []byte
	where := ""
	if n > 0 {
		newest = l.tail[(l.head+len(l.tail)-1)%len(l.tail)]
		where = fmt.Sprintf("line %d", n)
	}
	if len(l.tail) < TailSize {
		rotated, err := rotatedFiles(l.path)
		if err != nil {
			return fmt.Errorf("list rotated files: %w", err)
		}
		if len(rotated) > 0 {
			prev := rotated[len(rotated)-1].path
			older, err := readTailLines(prev, TailSize-len(l.tail))
			if err != nil {
				return fmt.Errorf("newest rotated file %s: %w", prev, err)
			}
			if n == 0 {
				if len(older) == 0 {
					return fmt.Errorf("the active file is empty and the newest rotated file %s holds no entry to continue from, run `weir audit verify`", prev)
				}
				newest = older[len(older)-1]
				where = "last line of " + prev
			}
			l.prependTail(older)
		}
	}
	if newest == nil {
		return nil
	}
	e, err := l.h.check(newest)
	if err != nil {
		return fmt.Errorf("newest entry (%s) fails verification, run `weir audit verify`: %w", where, err)
	}
	l.seq, l.last = e.Seq, e.Hash
	if n > 0 {
		// The first entry names the file when it is rotated. Should it
		// not parse, its seq follows from the count of lines; Verify
		// reports the bad line either way.
		if fe, err := ParseLine(first); err == nil {
			l.firstSeq = fe.Seq
		} else if l.seq >= uint64(n) {
			l.firstSeq = l.seq - uint64(n) + 1
		} else {
			l.firstSeq = 1
		}
	}
	return nil
}

// readActive reads the active file's complete lines into the tail ring and
// cuts a torn last line. It returns the number of lines, the first one,
// and leaves l.size at the end of the last complete line.
func (l *Log) readActive(f *os.File) (n int, first []byte, err error) {
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64 // offset after the last complete line
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			n++
			off += int64(len(line))
			kept := bytes.Clone(line[:len(line)-1])
			if n == 1 {
				first = kept
			}
			l.remember(kept)
		} else if len(line) > 0 {
			if terr := l.cutTorn(f, off, line); terr != nil {
				return 0, nil, terr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		if len(line) > maxLine {
			return 0, nil, &VerifyError{Line: n, Err: errors.New("line longer than 1 MiB")}
		}
	}
	l.size = off
	return n, first, nil
}

// cutTorn preserves a torn last line in a side file and truncates it.
func (l *Log) cutTorn(f *os.File, off int64, torn []byte) error {
	side := l.path + ".torn-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.WriteFile(side, torn, 0o600); err != nil {
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
func (h hasher) check(line []byte) (Entry, error) {
	e, err := ParseLine(line)
	if err != nil {
		return Entry{}, err
	}
	canon, err := canonicalOf(line, e.Hash)
	if err != nil {
		return Entry{}, err
	}
	if h.sum(canon) != e.Hash {
		return Entry{}, ErrHashMismatch
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

// ringLines returns the tail ring's lines, oldest first.
func (l *Log) ringLines() [][]byte {
	lines := make([][]byte, 0, len(l.tail))
	lines = append(lines, l.tail[l.head:]...)
	return append(lines, l.tail[:l.head]...)
}

// prependTail puts older lines (oldest first) before the ring's, keeping
// at most TailSize in all.
func (l *Log) prependTail(older [][]byte) {
	cur := l.ringLines()
	older = older[len(older)-min(len(older), TailSize-len(cur)):]
	l.tail, l.head = append(older, cur...), 0
}

// Append assigns the entry its sequence number, time (when zero) and
// chain hashes, writes it as one line and syncs the file before
// returning: an entry that Append accepted survives a power cut. Writes to
// OT are rare (rate-limited per tag), so a sync per entry costs little.
//
// An entry that would take the active file past max_bytes first rotates
// it (rotate.go); the entry starts the new file and the chain continues.
//
// After a failed write or sync the file may end in a partial line, so the
// Log refuses every further Append (Err reports why) until it is reopened,
// which cuts the partial line; likewise after a failed rotation, which
// reopening completes. The write gate refuses writes while the
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
	e.capTexts()
	e.PrevHash = l.last
	l.buf = appendCanonical(l.buf[:0], &e)
	e.Hash = l.h.sum(l.buf)
	l.buf = appendLine(l.buf[:0], &e)
	l.buf = append(l.buf, '\n')
	if l.size > 0 && l.size+int64(len(l.buf)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			l.err = fmt.Errorf("audit: rotate %s: %w", l.path, err)
			return Entry{}, l.err
		}
	}
	if _, err := l.f.Write(l.buf); err != nil {
		l.err = fmt.Errorf("audit: write %s: %w", l.path, err)
		return Entry{}, l.err
	}
	if err := l.f.Sync(); err != nil {
		l.err = fmt.Errorf("audit: sync %s: %w", l.path, err)
		return Entry{}, l.err
	}
	l.seq, l.last = e.Seq, e.Hash
	l.size += int64(len(l.buf))
	if l.firstSeq == 0 {
		l.firstSeq = e.Seq
	}
	l.remember(bytes.Clone(l.buf[:len(l.buf)-1]))
	if l.cp.on && l.seq-l.cp.taken >= l.cp.every {
		l.checkpointLocked()
	}
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
	lines := l.ringLines()
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
	if l.cp.on && l.seq != l.cp.taken && l.err == nil {
		l.checkpointLocked()
	}
	err := l.f.Close()
	l.f = nil
	return err
}
