package durable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Keys: records are 0x01 + position (8 bytes big-endian), so that key order
// is push order; 0x00 + name holds metadata.
const (
	recPrefix  = 0x01
	keyLen     = 9
	formatKey  = "\x00format"
	formatV1   = "1"
	lockName   = "weir.lock"
	corruptTag = ".corrupt-"
)

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("buffer store is in use by another process")

// ErrNewerFormat is returned by Open for a store written by a newer Weir:
// it is left untouched rather than quarantined, so a downgrade loses nothing.
var ErrNewerFormat = errors.New("buffer store has a newer format")

func recKey(dst []byte, pos uint64) []byte {
	dst = append(dst[:0], recPrefix, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(dst[1:], pos)
	return dst
}

func keyPos(k []byte) (uint64, bool) {
	if len(k) != keyLen || k[0] != recPrefix {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// pebbleLogger routes Pebble's messages to slog. Pebble calls Fatalf when it
// cannot go on (a failed WAL write); it must not return.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("storage engine failed", "err", msg)
	panic("durable buffer: pebble: " + msg)
}

// memTableSize bounds each buffer's memtable; with range tombstones for
// acked batches a flush writes little, so small memtables cost little.
const memTableSize = 2 << 20

// sharedBlockCache is the one Pebble block cache of the process (4 MiB).
// Each store takes its own reference; this one is held for the process's
// lifetime.
var sharedBlockCache = sync.OnceValue(func() *pebble.Cache { return pebble.NewCache(4 << 20) })

func pebbleOptions(fs vfs.FS, log *slog.Logger) *pebble.Options {
	o := &pebble.Options{
		FS:     fs,
		Logger: pebbleLogger{log},
		// A buffer per sink: keep each one's memory small. The first
		// memtable starts at 256 KiB and doubles up to this.
		MemTableSize: memTableSize,
		// Live batches come from the tail cache, so the block cache only
		// serves backlog replay, which reads sequentially: one small cache
		// shared by every buffer in the process is enough.
		Cache:              sharedBlockCache(),
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Warn("storage background error", "err", err) },
		},
	}
	return o
}

// lockDir takes the store's own lock, held as long as the Buffer is open.
// Pebble locks too, but failing on Weir's lock first tells "in use" apart
// from "corrupt", so a store in use is never quarantined.
func lockDir(fs vfs.FS, dir string) (io.Closer, error) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := syncParents(fs, dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	l, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", dir, ErrLocked, err)
	}
	return l, nil
}

// scanResult is what Open learns from reading the whole store.
type scanResult struct {
	first, next uint64 // first position held, position after the last
	held        int
	bytes       int64
	corrupt     uint64 // bad records deleted
	lastGood    uint64 // position of the last readable record (valid if held > 0)
}

// scan reads every record, checks its checksum, deletes bad ones and counts
// what is held. An error means the store cannot be read to the end.
func scan(db *pebble.DB, log *slog.Logger) (scanResult, error) {
	var r scanResult
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{recPrefix}, UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		return r, err
	}
	bad := db.NewBatch()
	defer bad.Close()
	for ok := it.First(); ok; ok = it.Next() {
		pos, okKey := keyPos(it.Key())
		v := it.Value()
		if !okKey || checkRecord(v) != nil {
			_ = bad.Delete(append([]byte(nil), it.Key()...), nil)
			r.corrupt++
			continue
		}
		if r.held == 0 {
			r.first = pos
		}
		r.held++
		r.bytes += int64(len(v))
		r.lastGood = pos
		r.next = pos + 1
	}
	if err := it.Close(); err != nil {
		return r, err
	}
	if r.corrupt > 0 {
		log.Error("corrupt records in buffer store skipped", "records", r.corrupt)
		if err := db.Apply(bad, pebble.Sync); err != nil {
			return r, fmt.Errorf("delete corrupt records: %w", err)
		}
	}
	return r, nil
}

// checkRecord verifies a record's header and checksum without decoding it.
func checkRecord(v []byte) error {
	if len(v) < headerLen || v[0] != recordVersion {
		return errCorrupt
	}
	if binary.LittleEndian.Uint32(v[1:]) != crc32Of(v[headerLen:]) {
		return errCorrupt
	}
	return nil
}

// checkFormat reads or writes the store format marker.
func checkFormat(db *pebble.DB) error {
	v, closer, err := db.Get([]byte(formatKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return db.Set([]byte(formatKey), []byte(formatV1), pebble.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if string(v) != formatV1 {
		return fmt.Errorf("%w: %q (this version reads %s)", ErrNewerFormat, v, formatV1)
	}
	return nil
}

// quarantineName is where a corrupt store at dir is moved.
func quarantineName(dir string, now time.Time) string {
	return dir + corruptTag + now.UTC().Format("20060102T150405.000000000Z")
}

// salvage copies the readable records of a damaged store into a fresh one
// at dst, stopping at the first unreadable one, and returns how many it
// saved.
func salvage(src *pebble.DB, dst *pebble.DB) (int, error) {
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: []byte{recPrefix}, UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := dst.NewBatch()
	defer b.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if _, okKey := keyPos(it.Key()); !okKey || checkRecord(it.Value()) != nil {
			continue
		}
		if err := b.Set(it.Key(), it.Value(), nil); err != nil {
			return n, err
		}
		n++
	}
	// The iterator's error is what made this a salvage: keep what was read.
	return n, dst.Apply(b, pebble.Sync)
}

// syncParents syncs every directory above dir, so that a store created (or
// renamed) just before a power loss is still found after it: Pebble syncs
// the store's own directory, not the entries leading to it.
func syncParents(fs vfs.FS, dir string) error {
	for d := dir; ; {
		parent := fs.PathDir(d)
		if parent == d || parent == "" || parent == "." {
			return nil
		}
		f, err := fs.OpenDir(parent)
		if err != nil {
			return err
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return err
		}
		d = parent
	}
}
