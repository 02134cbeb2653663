package durable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Keys: chunks are 0x01 + the position of their last sample (8 bytes
// big-endian), so that key order is push order (see chunk.go); 0x00 + name
// holds metadata.
const (
	recPrefix = 0x01
	keyLen    = 9
	formatKey = "\x00format"
	// headsKey holds the heads marker: see putHeads.
	headsKey = "\x00heads"
	// formatV1 stores hold a key per sample; formatV2 stores hold chunks
	// (and may still hold format-1 records, read as chunks of one). A
	// format-1 store is marked 2 when opened, so that an older Weir
	// refuses it instead of taking its chunks for corrupt records.
	formatV1   = "1"
	formatV2   = "2"
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

// putKey writes the key of pos into k, which has keyLen bytes.
func putKey(k []byte, pos uint64) {
	k[0] = recPrefix
	binary.BigEndian.PutUint64(k[1:keyLen], pos)
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

// Infof is Pebble's only level below fatal: routine notes (debug) and,
// through its default event listener, "background error: …" (a failed
// flush or compaction, e.g. a full disk), which must not hide at debug.
func (l pebbleLogger) Infof(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	level := slog.LevelDebug
	if strings.Contains(strings.ToLower(msg), "error") {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, msg, "lib", "pebble")
}
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

// pebbleOptions are the options of this buffer's store.
func (b *Buffer) pebbleOptions(fs vfs.FS) *pebble.Options {
	o := pebbleOptions(fs, b.log)
	if b.tune != nil {
		b.tune(o)
	}
	return o
}

// lockDir takes the store's own lock, held as long as the Buffer is open.
// Pebble locks too, but failing on Weir's lock first tells "in use" apart
// from "corrupt", so a store in use is never quarantined.
func lockDir(fs vfs.FS, dir string) (io.Closer, error) {
	if err := fs.MkdirAll(dir, 0o700); err != nil {
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
	corrupt     uint64 // bad samples deleted
}

// heads is the heads marker: the heads of the backlog and the live region
// when samples last left the store. Everything before back is gone, and so
// is what precedes live in the chunk that holds live: with it, a chunk
// acked or dropped only in part does not come back after a restart. It is
// written in the same Pebble batch as the deletes of the chunks that went
// whole, so a store never has one without the other.
type heads struct{ back, live uint64 }

// readHeads reads the heads marker. An unreadable one is ignored: what it
// marked as gone is delivered again, which at-least-once allows.
func readHeads(db *pebble.DB, log *slog.Logger) (heads, bool) {
	v, closer, err := db.Get([]byte(headsKey))
	if err != nil {
		if !errors.Is(err, pebble.ErrNotFound) {
			log.Warn("buffer heads marker unreadable; acked samples may be delivered again", "err", err)
		}
		return heads{}, false
	}
	defer closer.Close()
	if len(v) != 16 {
		log.Warn("buffer heads marker malformed; acked samples may be delivered again", "bytes", len(v))
		return heads{}, false
	}
	return heads{back: binary.BigEndian.Uint64(v), live: binary.BigEndian.Uint64(v[8:])}, true
}

// gone is the first position of the chunk first..last that is still held
// according to h.
func (h heads) gone(first, last uint64) uint64 {
	g := h.back
	if h.live > first && h.live <= last {
		g = max(g, h.live)
	}
	return g
}

// sweep follows a read of the chunks in key order, for counting the
// samples of an unreadable chunk (claimedCount): those can only be at
// positions not yet gone, after the previous chunk and, in the chunk that
// holds the live head, from that head on.
type sweep struct {
	h     heads
	after uint64 // the first position the next chunk can hold
}

func newSweep(h heads) sweep { return sweep{h: h, after: h.back} }

// good moves past a readable chunk.
func (s *sweep) good(last uint64) { s.after = max(s.after, last+1) }

// lost is how many samples the unreadable chunk v stored under last is
// taken to have held, and moves past it.
func (s *sweep) lost(last uint64, v []byte) uint64 {
	after := s.after
	if after < s.h.live && s.h.live <= last {
		// The chunk holds the live head (drain_rate with a backlog): what
		// precedes the head in it was acked, not lost.
		after = s.h.live
	}
	s.good(last)
	return claimedCount(last, v, after)
}

// scan reads every chunk, checks its framing and each record's checksum,
// and counts what is held. Unreadable chunks and bad samples are deleted
// (counted as corrupt); chunks cut by the heads marker are rewritten
// without the samples that are gone, so that the marker can go — unless
// write is false (a read-only open): the counts are the same either way.
// An error means the store cannot be read to the end.
func scan(db *pebble.DB, log *slog.Logger, write bool) (scanResult, error) {
	var r scanResult
	h, hasHeads := readHeads(db, log)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{recPrefix}, UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		return r, err
	}
	fix := db.NewBatch()
	defer fix.Close()
	var (
		offs     []int32
		val      []byte
		sw       = newSweep(h)
		rewrites int
		found    bool
	)
	for ok := it.First(); ok; ok = it.Next() {
		key, v := it.Key(), it.Value()
		last, okKey := keyPos(key)
		if !okKey {
			_ = fix.Delete(key, nil)
			r.corrupt++
			continue
		}
		c, perr := parseChunk(last, v, offs)
		offs = c.offs
		if perr != nil {
			_ = fix.Delete(key, nil)
			r.corrupt += sw.lost(last, v)
			continue
		}
		sw.good(last)
		good, bad, bytes, changed := fixChunk(&c, h.gone(c.first, c.last), func(lo, hi int) {
			if !found {
				r.first, found = c.pos(lo), true
			}
			r.next = c.pos(hi-1) + 1
		})
		r.held += good
		r.bytes += bytes
		r.corrupt += uint64(bad)
		if !changed {
			continue
		}
		rewrites++
		keep := false
		fixChunk(&c, h.gone(c.first, c.last), func(lo, hi int) {
			val = appendRun(val[:0], &c, lo, hi)
			_ = fix.Set(recKey(nil, c.pos(hi-1)), val, nil)
			keep = keep || hi == c.n()
		})
		if !keep {
			_ = fix.Delete(key, nil)
		}
	}
	if err := it.Close(); err != nil {
		return r, err
	}
	if hasHeads {
		// Positions only grow, even when everything was acked.
		r.next = max(r.next, h.back, h.live)
		_ = fix.Delete([]byte(headsKey), nil) // applied: the chunks say it all now
	}
	if r.corrupt > 0 && write {
		log.Error("corrupt samples in buffer store dropped", "samples", r.corrupt)
	}
	if fix.Count() > 0 && write {
		if err := db.Apply(fix, pebble.Sync); err != nil {
			return r, fmt.Errorf("rewrite %d chunks: %w", rewrites, err)
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

// checkFormat reads or writes the store format marker; a format-1 store
// is marked format 2 (see formatV2).
func checkFormat(db *pebble.DB) error {
	v, closer, err := db.Get([]byte(formatKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return db.Set([]byte(formatKey), []byte(formatV2), pebble.Sync)
	}
	if err != nil {
		return err
	}
	format := string(v)
	_ = closer.Close()
	switch format {
	case formatV2:
		return nil
	case formatV1:
		return db.Set([]byte(formatKey), []byte(formatV2), pebble.Sync)
	}
	return fmt.Errorf("%w: %q (this version reads %s and %s)", ErrNewerFormat, format, formatV1, formatV2)
}

// quarantineName is where a corrupt store at dir is moved.
func quarantineName(dir string, now time.Time) string {
	return dir + corruptTag + now.UTC().Format("20060102T150405.000000000Z")
}

// salvage copies the readable samples of a damaged store into a fresh one
// at dst, skipping those the heads marker says are gone, and returns how
// many it saved and how many it found unreadable (chunks whose framing
// does not parse, counted as scan counts them, and bad records). Samples
// beyond the point where src could not be read further are in neither
// count: how many there were is unknown.
func salvage(src *pebble.DB, dst *pebble.DB, log *slog.Logger) (saved int, lost uint64, err error) {
	h, _ := readHeads(src, log)
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: []byte{recPrefix}, UpperBound: []byte{recPrefix + 1}})
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	b := dst.NewBatch()
	defer b.Close()
	var (
		offs []int32
		val  []byte
		sw   = newSweep(h)
	)
	for ok := it.First(); ok; ok = it.Next() {
		last, okKey := keyPos(it.Key())
		if !okKey {
			lost++
			continue
		}
		c, perr := parseChunk(last, it.Value(), offs)
		offs = c.offs
		if perr != nil {
			lost += sw.lost(last, it.Value())
			continue
		}
		sw.good(last)
		good, bad, _, _ := fixChunk(&c, h.gone(c.first, c.last), func(lo, hi int) {
			val = appendRun(val[:0], &c, lo, hi)
			_ = b.Set(recKey(nil, c.pos(hi-1)), val, nil)
		})
		saved += good
		lost += uint64(bad)
	}
	// The iterator's error is what made this a salvage: keep what was read.
	return saved, lost, dst.Apply(b, pebble.Sync)
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
