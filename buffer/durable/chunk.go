package durable

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Chunks: the store holds one Pebble key per run of consecutive samples
// (what one commit of a Push wrote), not one per sample. Pebble's costs
// are per key — a skiplist insert on write, a pass of every flush and
// compaction over it, a tombstone to drop it — so a burst of 10,000 samples
// costs ten keys instead of 10,000.
//
// The key is recPrefix + the position of the chunk's LAST sample (8 bytes
// big-endian). With the last position as key, "every chunk that ends
// before position e" is the key range [head, e): an ack, a drop or an
// expiry deletes whole chunks with one range (or a few point deletes)
// without having to know where chunks start, and the chunk holding a
// position p is the first key at or after p (an iterator's lower bound).
//
// Value, format 2 (see record.proto):
//
//	byte          chunkVersion (2)
//	uvarint       n, the number of samples (1..maxChunkSamples)
//	n × uvarint   the length of each record
//	4 bytes       CRC-32C (little-endian) of everything above
//	n records     each a version-1 record: version, its own CRC-32C, Sample
//
// The header's CRC guards the framing: a chunk whose header does not check
// is dropped whole. Each record keeps its own CRC, so a damaged sample is
// dropped alone and the rest of its chunk delivered.
//
// A value that starts with recordVersion (1) is a record of a format-1
// store (one key per sample): a chunk of one sample. Such stores are read
// as they are; new samples go in chunks after them.
const (
	chunkVersion = 2
	// maxChunkSamples bounds a chunk, so that reading a position in the
	// middle of one decodes a bounded header and a Nack re-reads little.
	maxChunkSamples = 1024
	// maxChunkBytes bounds a chunk's records (a chunk holds at least one).
	maxChunkBytes = 256 << 10
	// crcLen is the header checksum's size.
	crcLen = 4
)

// chunk is a parsed chunk value. It refers to the value's bytes, valid
// only as long as they are.
type chunk struct {
	first, last uint64  // positions of its first and last sample
	body        []byte  // the records, back to back
	offs        []int32 // record i is body[offs[i]:offs[i+1]]
}

func (c *chunk) n() int             { return len(c.offs) - 1 }
func (c *chunk) pos(i int) uint64   { return c.first + uint64(i) }
func (c *chunk) rec(i int) []byte   { return c.body[c.offs[i]:c.offs[i+1]] }
func (c *chunk) size(i int) int     { return int(c.offs[i+1] - c.offs[i]) }
func (c *chunk) index(p uint64) int { return int(p - c.first) }

// errBadChunk marks a chunk whose header or framing is unreadable.
var errBadChunk = fmt.Errorf("%w: bad chunk", errCorrupt)

// parseChunk parses the value v stored under the key of position last,
// reusing offs. It checks the framing (and the header CRC), not the
// records: each record's CRC is checked when it is decoded.
func parseChunk(last uint64, v []byte, offs []int32) (chunk, error) {
	c := chunk{last: last, offs: offs[:0]}
	if len(v) == 0 {
		return c, fmt.Errorf("%w: empty value", errBadChunk)
	}
	if v[0] == recordVersion { // format 1: one record
		c.first, c.body = last, v
		c.offs = append(c.offs, 0, int32(len(v)))
		return c, nil
	}
	if v[0] != chunkVersion {
		return c, fmt.Errorf("%w: unknown version %d", errBadChunk, v[0])
	}
	p := 1
	n, k := binary.Uvarint(v[p:])
	if k <= 0 || n < 1 || n > maxChunkSamples || n-1 > last {
		return c, fmt.Errorf("%w: sample count", errBadChunk)
	}
	p += k
	c.offs = append(c.offs, 0)
	var total uint64
	for range n {
		l, k := binary.Uvarint(v[p:])
		if k <= 0 || l < headerLen || l > uint64(len(v)) {
			return c, fmt.Errorf("%w: record length", errBadChunk)
		}
		p += k
		total += l
		if total > uint64(len(v)) {
			return c, fmt.Errorf("%w: records longer than the chunk", errBadChunk)
		}
		c.offs = append(c.offs, int32(total))
	}
	if len(v) < p+crcLen {
		return c, fmt.Errorf("%w: truncated header", errBadChunk)
	}
	if binary.LittleEndian.Uint32(v[p:]) != crc32Of(v[:p]) {
		return c, fmt.Errorf("%w: header checksum", errBadChunk)
	}
	c.body = v[p+crcLen:]
	if uint64(len(c.body)) != total {
		return c, fmt.Errorf("%w: %d bytes of records, header says %d", errBadChunk, len(c.body), total)
	}
	c.first = last - (n - 1)
	return c, nil
}

// appendChunkHeader appends the header of a chunk of the records split at
// offs (record i spans offs[i]..offs[i+1] of some body).
func appendChunkHeader[T int | int32](dst []byte, offs []T) []byte {
	start := len(dst)
	dst = append(dst, chunkVersion)
	dst = binary.AppendUvarint(dst, uint64(len(offs)-1))
	for i := 1; i < len(offs); i++ {
		dst = binary.AppendUvarint(dst, uint64(offs[i]-offs[i-1]))
	}
	return binary.LittleEndian.AppendUint32(dst, crc32Of(dst[start:]))
}

// appendRun appends a chunk value holding records lo..hi-1 of c.
func appendRun(dst []byte, c *chunk, lo, hi int) []byte {
	dst = appendChunkHeader(dst, c.offs[lo:hi+1])
	return append(dst, c.body[c.offs[lo]:c.offs[hi]]...)
}

// claimedCount is how many samples an unreadable chunk stored under last
// is taken to have held, for counting them as dropped_corrupt: the count
// its header claims when that is plausible (1..maxChunkSamples), else 1;
// never reaching back to or before after (the position after the
// previous chunk, or the first position not already gone).
func claimedCount(last uint64, v []byte, after uint64) uint64 {
	n := uint64(1)
	if len(v) > 1 && v[0] == chunkVersion {
		if x, k := binary.Uvarint(v[1:]); k > 0 && x >= 1 && x <= maxChunkSamples {
			n = x
		}
	}
	if last < after {
		return 0
	}
	return min(n, last-after+1)
}

// fixChunk decides what of chunk c survives: the samples at gone or later
// whose record checks. It calls run for each maximal run lo..hi-1 of them
// and reports the counts. changed says the store must be rewritten: some
// samples were cut or are bad.
func fixChunk(c *chunk, gone uint64, run func(lo, hi int)) (good, bad int, bytes int64, changed bool) {
	lo := -1
	for i := 0; i <= c.n(); i++ {
		ok := false
		if i < c.n() {
			switch {
			case c.pos(i) < gone:
				changed = true
			case checkRecord(c.rec(i)) != nil:
				bad++
				changed = true
			default:
				ok = true
				good++
				bytes += int64(c.size(i))
			}
		}
		if ok && lo < 0 {
			lo = i
		}
		if !ok && lo >= 0 {
			run(lo, i)
			lo = -1
		}
	}
	return good, bad, bytes, changed
}

// writeChunks adds to wb the chunks of samples i..i+k-1, stored from
// position pos on, and returns the bytes of their records. Called with wmu
// and mu held.
func (b *Buffer) writeChunks(wb *pebble.Batch, pos uint64, i, k int) int64 {
	b.chunkLens = b.chunkLens[:0]
	for j := i; j < i+k; {
		m := 1 // a chunk takes at least one record, however large
		for m < min(i+k-j, maxChunkSamples) && b.off(j+m+1)-b.off(j) <= maxChunkBytes {
			m++
		}
		b.hdr = appendChunkHeader(b.hdr[:0], b.encOffs[j:j+m+1])
		body := b.encoded[b.off(j):b.off(j+m)]
		op := wb.SetDeferred(keyLen, len(b.hdr)+len(body))
		putKey(op.Key, pos+uint64(j-i+m-1))
		copy(op.Value[copy(op.Value, b.hdr):], body)
		_ = op.Finish()
		b.chunkLens = append(b.chunkLens, m)
		j += m
	}
	return int64(b.off(i+k) - b.off(i))
}

// badChunk is the error walk returns for an unreadable chunk.
type badChunk struct {
	last    uint64 // its key
	size    int    // its value's length
	claimed uint64 // the samples it is taken to hold: claimedCount
	err     error
}

func (e *badChunk) Error() string {
	return fmt.Sprintf("chunk ending at position %d: %v", e.last, e.err)
}

func (e *badChunk) Unwrap() error { return e.err }

// walk calls fn with each sample held at positions [from, to), in order,
// with its record and the position of the last sample of its chunk (the
// chunk's key), until fn returns false. Chunks end at or before limit
// (exclusive), the bound of the keys it reads: a region's end, or further
// when to may fall inside a chunk. An unreadable chunk that may hold
// positions before to stops the walk with a *badChunk error. offs is
// scratch it reuses.
func walk(db *pebble.DB, from, to, limit uint64, offs *[]int32, fn func(pos uint64, rec []byte, last uint64) bool) error {
	if to <= from {
		return nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: recKey(nil, from), UpperBound: recKey(nil, limit)})
	if err != nil {
		return err
	}
	err = walkIter(it, from, to, offs, fn)
	return errors.Join(err, it.Close())
}

func walkIter(it *pebble.Iterator, from, to uint64, offs *[]int32, fn func(pos uint64, rec []byte, last uint64) bool) error {
	for ok := it.First(); ok; ok = it.Next() {
		last, okKey := keyPos(it.Key())
		if !okKey {
			continue // holds no position; Open deletes it
		}
		c, err := parseChunk(last, it.Value(), *offs)
		*offs = c.offs
		if err != nil {
			if last >= to+maxChunkSamples-1 {
				return nil // cannot reach back before to
			}
			return &badChunk{last: last, size: len(it.Value()), claimed: claimedCount(last, it.Value(), 0), err: err}
		}
		if c.first >= to {
			return nil
		}
		i := 0
		if c.first < from {
			i = c.index(from)
		}
		for ; i < c.n(); i++ {
			p := c.pos(i)
			if p >= to || !fn(p, c.rec(i), last) {
				return nil
			}
		}
	}
	return it.Error()
}

// beyond is the key bound for a walk whose to may fall inside a chunk.
func beyond(to uint64) uint64 { return to + maxChunkSamples }
