package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Buffer is a durable buffer.Buffer: one Pebble store per sink.
//
// Positions number the samples; the store keeps them in chunks, one key
// per run of samples a Push committed (chunk.go). Held samples live in two
// regions: the backlog [back.head, back.end), replayed as Historical, and
// the live region [live.head, tail). Without a drain rate the backlog is
// only what an earlier process left, and Next serves it first: strict
// FIFO. With a drain rate, data that waited longer than backlogAfter also
// becomes backlog, and Next alternates between the two regions.
type Buffer struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	free func() (int64, error)
	// recheck is how often a full disk is looked at again.
	recheck time.Duration
	db      *pebble.DB
	lock    io.Closer
	sync    *syncer // fsync: group only
	wopt    *pebble.WriteOptions

	// wmu serialises writers, so positions are committed in order and the
	// room a writer found cannot shrink under it.
	wmu      sync.Mutex
	diskAt   time.Time // last free-space check
	diskFull bool
	// diskBudget is how many bytes may be written before the disk is
	// looked at again, whatever the time (reclaim.go).
	diskBudget int64
	encoded    []byte
	encOffs    []int
	hdr        []byte // a chunk header being written
	chunkLens  []int  // the chunks of the commit being written
	closeOnce  sync.Once

	mu          sync.Mutex
	notEmpty    *sync.Cond
	notFull     *sync.Cond
	back        region
	live        region
	bytes       int64
	fl          flight
	closed      bool
	released    bool
	stats       buffer.Stats
	dec         decoder
	scratch     []model.Sample
	drain       tokens
	caughtUp    time.Time // last time nothing live was waiting
	drops       dropLog
	cache       tailCache // the newest records, so Next rarely reads the store
	offs        []int32   // chunk parsing scratch
	keys        []uint64  // chunk keys to delete, scratch
	beforeApply func()    // options.beforeApply
	tune        func(*pebble.Options)
	// readOnly: opened by OpenReadOnly; nothing is ever written.
	readOnly bool
	// gone counts the bytes that left the store since the last reclaim;
	// diskStale asks for a free-space check at the next Push (reclaim.go).
	gone      int64
	diskStale bool
	rc        *reclaimer // nil when read-only
	// marks counts heads-marker writes, so that a Push whose batch carried
	// one (drop_oldest) can tell whether it may have overwritten a newer one.
	marks uint64
}

var (
	_ buffer.Buffer     = (*Buffer)(nil)
	_ pipeline.Releaser = (*Buffer)(nil)
	_ pipeline.Releaser = (*DeadLetters)(nil)
)

// region is a run of positions. held counts the samples in it; it can be
// less than end-head only in a backlog with samples deleted as corrupt.
// end is always the end of a chunk: regions never share one.
type region struct {
	head, sent, end uint64
	held            int
	edge            int64 // EdgeTime of the record at head, when edgeOK
	edgeOK          bool
}

// flight is the batch handed out by Next and not yet acked or nacked.
type flight struct {
	active     bool
	first, end uint64
	back       bool
	sizes      []int32 // record sizes, by position - first
	// ends are the keys (last positions) of the chunks that end inside
	// the batch, when endsOK: what an Ack deletes key by key.
	ends   []uint64
	endsOK bool
}

// options are the seams tests use.
type options struct {
	fs   vfs.FS
	now  func() time.Time
	free func() (int64, error) // free bytes on the store's disk
	// recheck is how often a full disk is looked at again; default 1s.
	recheck time.Duration
	// cacheSamples bounds the tail cache; 0 means tailCacheSamples, -1
	// turns it off (every Next reads the store).
	cacheSamples int
	// beforeApply runs in a Push between building its batch and applying
	// it, with mu released: where an Ack can slip in.
	beforeApply func()
	// readOnly opens without writing anything: see OpenReadOnly.
	readOnly bool
	// reclaimRest is the shortest pause between reclaims; default
	// reclaimRest. afterReclaim is told of each one.
	reclaimRest  time.Duration
	afterReclaim func(reclaimed)
	// tune adjusts Pebble's options (tests: no automatic compactions).
	tune func(*pebble.Options)
}

// Open opens (or creates) the store in cfg.Dir. A store another process
// holds fails with ErrLocked; a corrupt one is moved aside (its readable
// records salvaged) and Open succeeds with what could be saved.
func Open(cfg Config, log *slog.Logger) (*Buffer, error) {
	return open(cfg, log, options{})
}

func open(cfg Config, log *slog.Logger, o options) (*Buffer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("durable buffer: no directory")
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = vfs.Default
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.free == nil {
		fs, dir := o.fs, cfg.Dir
		o.free = func() (int64, error) {
			u, err := fs.GetDiskUsage(dir)
			return int64(u.AvailBytes), err
		}
	}
	if o.recheck <= 0 {
		o.recheck = time.Second
	}
	b := &Buffer{cfg: cfg, log: log, now: o.now, free: o.free, recheck: o.recheck, beforeApply: o.beforeApply, readOnly: o.readOnly, tune: o.tune}
	b.notEmpty = sync.NewCond(&b.mu)
	b.notFull = sync.NewCond(&b.mu)
	b.drops.log = log
	switch b.cache.max = o.cacheSamples; {
	case b.cache.max == 0:
		b.cache.max = tailCacheSamples
	case b.cache.max < 0:
		b.cache.max = 0
	}
	b.stats.Capacity = cfg.MaxSamples
	b.stats.MaxBytes = cfg.MaxBytes
	if o.readOnly {
		if err := b.openReadOnly(o.fs); err != nil {
			return nil, err
		}
		b.wopt = pebble.NoSync
		return b, nil
	}
	if err := b.openStore(o.fs); err != nil {
		return nil, err
	}
	switch cfg.Fsync {
	case FsyncAlways:
		b.wopt = pebble.Sync
	case FsyncGroup:
		b.wopt = pebble.NoSync
		b.sync = newSyncer(b.db, cfg.GroupCommit)
	default:
		b.wopt = pebble.NoSync
	}
	if o.reclaimRest <= 0 {
		o.reclaimRest = reclaimRest
	}
	b.rc = newReclaimer(o.reclaimRest, o.afterReclaim)
	b.kickReclaim() // what an earlier run acked may still be on disk
	b.startReclaim()
	b.caughtUp = b.now()
	b.drain = tokens{rate: cfg.DrainRate, burst: max(cfg.DrainRate, 1), avail: max(cfg.DrainRate, 1), at: b.now()}
	return b, nil
}

// openStore locks and opens the store, scans it and sets the regions. A
// store that cannot be opened or read to the end is quarantined.
func (b *Buffer) openStore(fs vfs.FS) error {
	dir := b.cfg.Dir
	lock, err := lockDir(fs, dir)
	if err != nil {
		return err
	}
	db, err := pebble.Open(dir, b.pebbleOptions(fs))
	var res scanResult
	if err == nil {
		if err = checkFormat(db); errors.Is(err, ErrNewerFormat) {
			_ = db.Close()
			_ = lock.Close()
			return fmt.Errorf("open %s: %w", dir, err)
		}
		if err == nil {
			res, err = scan(db, b.log, true)
		}
	}
	if err != nil {
		// Corrupt: move it aside whole, start afresh with what is readable.
		q := quarantineName(dir, b.now())
		b.log.Error("buffer store corrupt; moving it aside", "err", err, "quarantine", q)
		tmp := dir + ".salvage"
		_ = fs.RemoveAll(tmp)
		fresh, ferr := pebble.Open(tmp, b.pebbleOptions(fs))
		if ferr != nil {
			_ = lock.Close()
			if db != nil {
				_ = db.Close()
			}
			return fmt.Errorf("open %s: %w (and a fresh store failed: %v)", dir, err, ferr)
		}
		var (
			saved int
			lost  uint64
		)
		if db != nil {
			saved, lost, _ = salvage(db, fresh, b.log)
			_ = db.Close()
		}
		_ = checkFormat(fresh)
		if cerr := fresh.Close(); cerr != nil {
			_ = lock.Close()
			return fmt.Errorf("open %s: salvage: %w", dir, cerr)
		}
		_ = lock.Close()
		if rerr := fs.Rename(dir, q); rerr != nil {
			return fmt.Errorf("open %s: quarantine: %w", dir, rerr)
		}
		if rerr := fs.Rename(tmp, dir); rerr != nil {
			return fmt.Errorf("open %s: salvage: %w", dir, rerr)
		}
		_ = syncParents(fs, fs.PathJoin(dir, lockName)) // make the renames stick
		b.log.Warn("salvaged records from the corrupt store", "records", saved, "unreadable", lost, "quarantine", q)
		b.stats.Quarantine = q
		b.stats.DroppedCorrupt += lost
		b.stats.Dropped += lost
		if lock, err = lockDir(fs, dir); err != nil {
			return err
		}
		if db, err = pebble.Open(dir, b.pebbleOptions(fs)); err != nil {
			_ = lock.Close()
			return fmt.Errorf("open %s after quarantine: %w", dir, err)
		}
		if res, err = scan(db, b.log, true); err != nil {
			_ = db.Close()
			_ = lock.Close()
			return fmt.Errorf("open %s after quarantine: %w", dir, err)
		}
	}
	b.setRegions(db, lock, res)
	return nil
}

// setRegions takes over the opened store and sets the regions from what
// scan found.
func (b *Buffer) setRegions(db *pebble.DB, lock io.Closer, res scanResult) {
	b.db, b.lock = db, lock
	b.stats.DroppedCorrupt += res.corrupt
	b.stats.Dropped += res.corrupt
	b.back = region{head: res.first, sent: res.first, end: res.next, held: res.held}
	b.live = region{head: res.next, sent: res.next, end: res.next}
	b.bytes = res.bytes
	b.normalize()
	if res.held > 0 && !b.readOnly {
		b.log.Info("buffer store opened with a backlog", "samples", res.held, "bytes", res.bytes)
	}
}

// Push implements buffer.Buffer: it returns once the samples are stored
// (and synced, unless fsync is os), or dropped under the policy.
func (b *Buffer) Push(ctx context.Context, samples []model.Sample) error {
	if b.readOnly {
		return errReadOnly
	}
	if b.sync != nil {
		b.sync.enter()
		defer b.sync.exit()
	}
	b.wmu.Lock()
	wrote, err := b.pushLocked(ctx, samples)
	var gen uint64
	if wrote && b.sync != nil {
		gen = b.sync.wrote()
	}
	b.wmu.Unlock()
	if wrote && b.sync != nil {
		if serr := b.sync.wait(gen); serr != nil && err == nil {
			err = fmt.Errorf("durable buffer: sync: %w", serr)
		}
	}
	return err
}

// PushAsync is Push in two phases, for a caller that must keep its pushes
// in order under a lock of its own (the engine) but should not hold that
// lock through an fsync: it stores samples now, in call order, and returns
// a function that waits until they are durable. With fsync: group,
// concurrent sources then share one sync instead of queueing one each. The
// returned function must be called exactly once; it is nil when nothing
// waits (fsync: always and os complete within PushAsync, as Push does).
func (b *Buffer) PushAsync(ctx context.Context, samples []model.Sample) (wait func() error, err error) {
	if b.sync == nil {
		return nil, b.Push(ctx, samples)
	}
	b.sync.enter()
	b.wmu.Lock()
	wrote, err := b.pushLocked(ctx, samples)
	var gen uint64
	if wrote {
		gen = b.sync.wrote()
	}
	b.wmu.Unlock()
	b.sync.exit()
	if !wrote {
		return nil, err
	}
	return func() error {
		if serr := b.sync.wait(gen); serr != nil {
			return fmt.Errorf("durable buffer: sync: %w", serr)
		}
		return nil
	}, err
}

// pushLocked stores samples, in as many commits as the policy needs. It
// reports whether anything was written. Called with wmu held.
func (b *Buffer) pushLocked(ctx context.Context, samples []model.Sample) (wrote bool, err error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false, buffer.ErrClosed
	}
	b.mu.Unlock()
	b.encode(samples)
	i := 0 // next sample to store
	b.mu.Lock()
	defer b.mu.Unlock()
	for i < len(samples) {
		if b.closed {
			return wrote, buffer.ErrClosed
		}
		b.expireLocked()
		if b.checkDisk() {
			if b.cfg.Policy == buffer.Block {
				if err := b.waitRoom(ctx, b.recheck); err != nil {
					return wrote, err
				}
				continue
			}
			n := uint64(len(samples) - i)
			b.stats.Dropped += n
			b.stats.DroppedDiskFull += n
			b.drops.add("disk_full", n, b.now())
			return wrote, nil
		}
		wb := b.db.NewBatch()
		k := b.fit(i)
		if k == 0 {
			if size := b.recSize(i); b.cfg.MaxBytes > 0 && size > b.cfg.MaxBytes {
				// Larger than the whole buffer: no policy can store it.
				b.countFull(1, false)
				i++
				wb.Close()
				continue
			}
			switch b.cfg.Policy {
			case buffer.DropNewest:
				n := uint64(len(samples) - i)
				b.countFull(n, false)
				wb.Close()
				return wrote, nil
			case buffer.Block:
				wb.Close()
				if err := b.waitRoom(ctx, 0); err != nil {
					return wrote, err
				}
				continue
			default:
				i = b.makeRoom(wb, i)
				if k = b.fit(i); k == 0 && i < len(samples) {
					// Nothing more could be dropped (unreadable store).
					b.countFull(uint64(len(samples)-i), false)
					_ = b.db.Apply(wb, b.wopt)
					wb.Close()
					return wrote, nil
				}
			}
		}
		pos := b.live.end
		marked, marks := wb.Count() > 0, b.marks // makeRoom put the heads marker in
		added := b.writeChunks(wb, pos, i, k)
		b.mu.Unlock()
		if b.beforeApply != nil {
			b.beforeApply()
		}
		err := b.db.Apply(wb, b.wopt)
		_ = wb.Close()
		b.mu.Lock()
		if err != nil {
			return wrote, fmt.Errorf("durable buffer %s: write: %w", b.cfg.Dir, err)
		}
		if marked && b.marks != marks {
			// An Ack or expiry wrote the heads marker while this batch,
			// carrying an older one (makeRoom), was being applied.
			b.putHeadsNow()
		}
		wrote = true
		for c, j := 0, i; j < i+k; c++ {
			m := b.chunkLens[c]
			b.cache.add(pos+uint64(j-i), samples[j:j+m], b.encOffs[j:j+m+1])
			j += m
		}
		b.live.end += uint64(k)
		b.live.held += k
		b.bytes += added
		b.diskBudget -= added
		b.stats.Pushed += uint64(k)
		i += k
		b.notEmpty.Signal()
	}
	return wrote, nil
}

// encode writes the records of samples into b.encoded; record j spans
// off(j)..off(j+1).
func (b *Buffer) encode(samples []model.Sample) {
	b.encoded = b.encoded[:0]
	b.encOffs = b.encOffs[:0]
	for j := range samples {
		b.encOffs = append(b.encOffs, len(b.encoded))
		b.encoded = appendRecord(b.encoded, &samples[j])
	}
	b.encOffs = append(b.encOffs, len(b.encoded))
}

func (b *Buffer) off(j int) int        { return b.encOffs[j] }
func (b *Buffer) recSize(j int) int64  { return int64(b.encOffs[j+1] - b.encOffs[j]) }
func (b *Buffer) held() int            { return b.back.held + b.live.held }
func (b *Buffer) pendingLen(i int) int { return len(b.encOffs) - 1 - i }

// fit is how many samples from i on fit in the room left.
func (b *Buffer) fit(i int) int {
	n := b.pendingLen(i)
	if b.cfg.MaxSamples > 0 {
		n = min(n, max(0, b.cfg.MaxSamples-b.held()))
	}
	if b.cfg.MaxBytes > 0 {
		room := b.cfg.MaxBytes - b.bytes
		k := 0
		for k < n && b.recSize(i+k) <= room {
			room -= b.recSize(i + k)
			k++
		}
		n = k
	}
	return n
}

// makeRoom applies drop_oldest: samples of this very push that cannot fit
// even in an empty buffer are dropped first (the freshest data wins), then
// the oldest held ones until the rest fits. It returns the new i.
func (b *Buffer) makeRoom(wb *pebble.Batch, i int) int {
	n := b.pendingLen(i)
	var total int64
	for j := i; j < i+n; j++ {
		total += b.recSize(j)
	}
	skip := 0
	if b.cfg.MaxSamples > 0 && n > b.cfg.MaxSamples {
		skip = n - b.cfg.MaxSamples
	}
	for j := i; j < i+skip; j++ {
		total -= b.recSize(j)
	}
	for b.cfg.MaxBytes > 0 && total > b.cfg.MaxBytes && skip < n {
		total -= b.recSize(i + skip)
		skip++
	}
	if skip > 0 {
		b.countFull(uint64(skip), true)
		i += skip
		n -= skip
	}
	needCount := 0
	if b.cfg.MaxSamples > 0 {
		needCount = b.held() + n - b.cfg.MaxSamples
	}
	var needBytes int64
	if b.cfg.MaxBytes > 0 {
		needBytes = b.bytes + total - b.cfg.MaxBytes
	}
	dropped := b.dropFront(wb, needCount, needBytes)
	b.countFull(uint64(dropped), false)
	return i
}

// countFull counts samples lost to the overflow policy; pushed says they
// count as accepted too (drop_oldest), as in the memory buffer.
func (b *Buffer) countFull(n uint64, pushed bool) {
	if n == 0 {
		return
	}
	if pushed {
		b.stats.Pushed += n
	}
	b.stats.Dropped += n
	b.stats.DroppedFull += n
	b.drops.add("full", n, b.now())
}

// waitRoom waits for an Ack (or Close, or ctx), or at most d when d > 0.
// Called with mu held.
func (b *Buffer) waitRoom(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.notFull.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	if d > 0 {
		t := time.AfterFunc(d, func() {
			b.mu.Lock()
			b.notFull.Broadcast()
			b.mu.Unlock()
		})
		defer t.Stop()
		b.diskAt = time.Time{} // look again when woken
	}
	b.notFull.Wait()
	if b.closed {
		return buffer.ErrClosed
	}
	return ctx.Err()
}

// Close refuses later Pushes and wakes every waiter. The store stays open
// so that Next can still hand out what is held, as buffer.Buffer requires;
// Release closes it.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.notEmpty.Broadcast()
	b.notFull.Broadcast()
	return nil
}

// Release closes the store and its lock, after a last sync: call it once
// the sink's worker has stopped. Everything not acked stays on disk for
// the next Open. It implies Close and is idempotent.
func (b *Buffer) Release() error {
	_ = b.Close()
	var err error
	b.closeOnce.Do(func() {
		b.wmu.Lock() // no writer left: Close woke the blocked ones
		defer b.wmu.Unlock()
		b.mu.Lock()
		b.released = true
		b.notEmpty.Broadcast()
		b.mu.Unlock()
		if b.sync != nil {
			b.sync.stop()
		}
		b.stopReclaim() // a compaction in progress ends first
		if b.cfg.Fsync != FsyncOS && !b.readOnly {
			err = b.db.LogData(nil, pebble.Sync) // acks since the last sync
		}
		err = errors.Join(err, b.db.Close(), b.lock.Close())
		if err != nil {
			err = fmt.Errorf("durable buffer %s: close: %w", b.cfg.Dir, err)
		}
	})
	return err
}
