package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
)

// Bounds of each cause's part of a dead-letter store. Dead letters are
// rare by nature (a poison sample, not a stream); the bounds only keep a
// misconfigured destination that refuses everything from filling the
// disk. Past them the oldest dead letters go, counted as dropped.
const (
	DeadLetterMaxBytes   = 16 << 20
	DeadLetterMaxSamples = 100_000
)

// deadMaxSamples is DeadLetterMaxSamples, lowered by tests.
var deadMaxSamples = DeadLetterMaxSamples

// DeadLetterSuffix names a sink's dead-letter directory beside its
// buffer: <data_dir>/buffers/<sink>.dead.
const DeadLetterSuffix = ".dead"

// DeadLetterDir is the dead-letter directory of the sink whose buffer is
// in bufferDir.
func DeadLetterDir(bufferDir string) string { return filepath.Clean(bufferDir) + DeadLetterSuffix }

// DeadLetters is a sink's dead-letter store: the samples its destination
// refused for good (see pipeline.RejectedError), kept apart from its
// buffer so that they stop blocking it. It is made of ordinary durable
// buffer stores, one per cause, in <dir>/<cause> — the same format, the
// same crash safety, and `weir buffer` reads them like any other store. A
// cause's store is created on its first dead letter, so a sink that never
// had one has no directory at all. Each store is bounded by
// DeadLetterMaxBytes and DeadLetterMaxSamples and drops its oldest
// samples when full (counted in its Stats as dropped).
//
// Put is called from one goroutine (the sink's worker); Stats from any.
type DeadLetters struct {
	dir string
	log *slog.Logger
	// minFree is the sink buffer's min_free_bytes: the dead letters live on
	// the same volume and keep the same reserve (0: the default).
	minFree int64

	mu     sync.Mutex
	stores map[string]*Buffer
	closed bool
}

// OpenDeadLetters opens the dead-letter store in dir, with the stores
// earlier runs left there (so that /status shows what is held). It creates
// nothing until the first Put.
func OpenDeadLetters(dir string, minFreeBytes int64, log *slog.Logger) (*DeadLetters, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DeadLetters{dir: dir, log: log, minFree: minFreeBytes, stores: map[string]*Buffer{}}
	causes, err := DeadLetterCauses(dir)
	if err != nil {
		return nil, err
	}
	for _, c := range causes {
		if _, err := d.store(c); err != nil {
			_ = d.Release()
			return nil, err
		}
	}
	return d, nil
}

// DeadLetterCauses lists the causes with a store in the dead-letter
// directory dir, sorted; none when dir does not exist.
func DeadLetterCauses(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", dir, err)
	}
	var causes []string
	for _, e := range entries {
		if e.IsDir() && validCause(e.Name()) && IsStore(filepath.Join(dir, e.Name())) == nil {
			causes = append(causes, e.Name())
		}
	}
	sort.Strings(causes)
	return causes, nil
}

// validCause keeps a cause usable as one directory name.
func validCause(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

// DeadLetterConfig is the buffer configuration of one cause's store;
// minFreeBytes is the sink buffer's reserve (0: the default).
func DeadLetterConfig(dir, cause string, minFreeBytes int64) Config {
	return Config{Dir: filepath.Join(dir, cause), MaxBytes: DeadLetterMaxBytes,
		MaxSamples: deadMaxSamples, Fsync: FsyncAlways, MinFreeBytes: minFreeBytes}
}

// store returns the store of cause, opening (creating) it on first use.
func (d *DeadLetters) store(cause string) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, buffer.ErrClosed
	}
	if b := d.stores[cause]; b != nil {
		return b, nil
	}
	if !validCause(cause) {
		return nil, fmt.Errorf("dead letters %s: cause %q is not a plain name", d.dir, cause)
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	b, err := Open(DeadLetterConfig(d.dir, cause, d.minFree), d.log.With("dead_letters", cause))
	if err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", cause, err)
	}
	d.stores[cause] = b
	return b, nil
}

// Put stores copies of samples under cause, synced before it returns.
func (d *DeadLetters) Put(ctx context.Context, cause string, samples []model.Sample) error {
	b, err := d.store(cause)
	if err != nil {
		return err
	}
	return b.Push(ctx, samples)
}

// Stats reports each cause's store.
func (d *DeadLetters) Stats() map[string]buffer.Stats {
	d.mu.Lock()
	stores := make(map[string]*Buffer, len(d.stores))
	for c, b := range d.stores {
		stores[c] = b
	}
	d.mu.Unlock()
	out := make(map[string]buffer.Stats, len(stores))
	for c, b := range stores {
		out[c] = b.Stats()
	}
	return out
}

// Release closes every store; later Puts fail. Idempotent.
func (d *DeadLetters) Release() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	var errs []error
	for c, b := range d.stores {
		errs = append(errs, b.Release())
		delete(d.stores, c)
	}
	return errors.Join(errs...)
}

// Dir is the store's directory, for what sits beside it (the sink's
// dead-letter store).
func (b *Buffer) Dir() string { return b.cfg.Dir }
