package durable

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// ErrNotStore is returned by OpenReadOnly for a directory that does not
// hold a Weir buffer store.
var ErrNotStore = errors.New("not a Weir buffer store")

// errReadOnly is returned by the writing methods of a read-only Buffer.
var errReadOnly = errors.New("durable buffer: opened read-only")

// OpenReadOnly opens the store in dir for reading only: Stats and Each
// work, Push and Purge fail. It is for tools (weir buffer list, export)
// that an operator may point at the wrong directory, so it creates,
// changes and moves nothing — no directory, no lock file, no format
// marker, no repair, no quarantine of a corrupt store — and it refuses a
// directory that is not a Weir store (ErrNotStore) before Pebble could
// create one there. A store another process holds fails with ErrLocked.
func OpenReadOnly(dir string, log *slog.Logger) (*Buffer, error) {
	return open(Config{Dir: dir}, log, options{readOnly: true})
}

// IsStore reports whether dir looks like a Weir buffer store (a Pebble
// store with Weir's lock file), without opening it; the error says what
// is missing.
func IsStore(dir string) error { return isStore(vfs.Default, dir) }

func isStore(fs vfs.FS, dir string) error {
	st, err := fs.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %w (not a directory)", dir, ErrNotStore)
	}
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	var manifest, pebbleLock, weirLock bool
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "MANIFEST-"):
			manifest = true
		case n == "LOCK":
			pebbleLock = true
		case n == lockName:
			weirLock = true
		}
	}
	// Pebble creates LOCK, and Weir its lock, when missing: both must
	// be there already for a read-only open to write nothing.
	switch {
	case !manifest:
		return fmt.Errorf("%s: %w (no MANIFEST file)", dir, ErrNotStore)
	case !pebbleLock || !weirLock:
		return fmt.Errorf("%s: %w (no LOCK or %s file)", dir, ErrNotStore, lockName)
	}
	return nil
}

// openReadOnly is openStore without a write: it locks the existing lock
// file, opens Pebble read-only (the WAL is replayed in memory) and scans
// without repairing.
func (b *Buffer) openReadOnly(fs vfs.FS) error {
	dir := b.cfg.Dir
	if err := isStore(fs, dir); err != nil {
		return err
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName)) // exists: not created
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		return fmt.Errorf("%s: %w (%v)", dir, ErrLocked, err)
	}
	opts := pebbleOptions(fs, b.log)
	opts.ReadOnly = true
	db, err := pebble.Open(dir, opts)
	if err != nil {
		_ = lock.Close()
		return fmt.Errorf("open %s read-only: %w", dir, err)
	}
	fail := func(err error) error {
		_ = db.Close()
		_ = lock.Close()
		return err
	}
	if err := readFormat(db); err != nil {
		return fail(fmt.Errorf("open %s: %w", dir, err))
	}
	res, err := scan(db, b.log, false)
	if err != nil {
		return fail(fmt.Errorf("open %s read-only: %w (a gateway opening it would quarantine it)", dir, err))
	}
	b.setRegions(db, lock, res)
	return nil
}

// readFormat checks the store format marker without writing one: a Pebble
// store without it was not written by Weir.
func readFormat(db *pebble.DB) error {
	v, closer, err := db.Get([]byte(formatKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w (a Pebble store without Weir's format marker)", ErrNotStore)
	}
	if err != nil {
		return err
	}
	format := string(v)
	_ = closer.Close()
	if format == formatV1 || format == formatV2 {
		return nil
	}
	return fmt.Errorf("%w: %q (this version reads %s and %s)", ErrNewerFormat, format, formatV1, formatV2)
}
