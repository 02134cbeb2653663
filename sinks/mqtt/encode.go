package mqtt

import (
	"slices"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// maxTopicCache bounds the topic cache; tag sets are static, so reaching it
// means paths churn and the cache is simply rebuilt.
const maxTopicCache = 1 << 16

// message is one MQTT message of a Write: its payload lives in
// encoder.buf[start:end].
type message struct {
	topic      string
	start, end int
	samples    int
	// olo, ohi: the batch indexes of the message's samples are
	// encoder.origin[olo:ohi], for rejecting exactly them.
	olo, ohi int32
	hash     uint32 // of topic; picks the worker so one topic stays in order
	// historical: the message carries replayed samples. It is never
	// retained, so a late replay cannot replace a topic's current value
	// for new subscribers.
	historical bool
}

// encoder turns a batch into messages. Its buffers are reused between
// Writes, so that the steady state allocates only what the MQTT library
// does.
type encoder struct {
	prefix string
	batch  bool

	buf     []byte
	msgs    []message
	scratch []model.Sample // batch mode: the batch grouped by asset
	// scratchIdx is the batch index of each sample of scratch.
	scratchIdx []int32
	// origin maps the messages' samples back to batch indexes (see
	// message.olo); rejected lists the batch indexes of samples whose
	// topic is invalid.
	origin   []int32
	rejected []int32
	// valid and validIdx: batch mode, the batch without its non-UTF-8
	// paths and their batch indexes.
	valid    []model.Sample
	validIdx []int32
	// batch mode grouping, reused: asset key → group, samples per group
	// (then each group's next index), each sample's group.
	groupOf     map[string]int32
	groupLen    []int32
	sampleGroup []int32
	shards      [][]int32
	// topics caches the topic of each tag path (sample mode) or asset
	// (batch mode); "" marks a key whose topic is invalid.
	topics map[string]string
	// limit is the largest PUBLISH packet the broker takes (the
	// connection's PacketLimiter), 0 for none; oversize lists the batch
	// indexes of the samples left out of the last encode because even
	// alone they make a larger one.
	limit    int
	oversize []int32
	// unchecked skips topic validation: tests use it to make the sink
	// send what a broker refuses, as it did before the check existed.
	unchecked bool
}

func newEncoder(prefix string, batch bool) encoder {
	return encoder{prefix: prefix, batch: batch, topics: make(map[string]string)}
}

// encode fills e.msgs from batch and returns them with the batch indexes
// of the samples whose topic is invalid, which are left out. Samples whose
// message would exceed e.limit are left out too, listed in e.oversize; in
// batch mode an asset's message that would is split first (see addBatch).
func (e *encoder) encode(batch []model.Sample) (msgs []message, rejected []int32) {
	e.buf = e.buf[:0]
	e.msgs = e.msgs[:0]
	e.origin = e.origin[:0]
	e.rejected = e.rejected[:0]
	e.oversize = e.oversize[:0]
	if !e.batch {
		for i := range batch {
			topic, ok := e.topic(batch[i].Path)
			if !ok {
				e.rejected = append(e.rejected, int32(i))
				continue
			}
			start := len(e.buf)
			e.buf = payload.AppendSample(e.buf, batch[i])
			if e.tooLarge(topic, start) {
				e.buf = e.buf[:start]
				e.oversize = append(e.oversize, int32(i))
				continue
			}
			e.origin = append(e.origin, int32(i))
			e.add(topic, start, 1, batch[i].Historical)
		}
		return e.msgs, e.rejected
	}
	// A tag name that is not UTF-8 cannot go into the JSON payload
	// intact: such samples are rejected, the others grouped.
	src, srcIdx := batch, []int32(nil)
	bad := false
	for i := range batch {
		bad = bad || !utf8.ValidString(batch[i].Path)
	}
	if bad {
		e.valid, e.validIdx = e.valid[:0], e.validIdx[:0]
		for i := range batch {
			if !utf8.ValidString(batch[i].Path) {
				e.rejected = append(e.rejected, int32(i))
				continue
			}
			e.valid = append(e.valid, batch[i])
			e.validIdx = append(e.validIdx, int32(i))
		}
		src, srcIdx = e.valid, e.validIdx
	}
	s, idx := e.group(src)
	at := func(k int) int32 {
		if idx != nil {
			k = int(idx[k])
		}
		if srcIdx != nil {
			return srcIdx[k]
		}
		return int32(k)
	}
	for i := 0; i < len(s); {
		key := e.key(s[i].Path)
		j := i + 1
		for j < len(s) && e.key(s[j].Path) == key {
			j++
		}
		if topic, ok := e.topic(key); ok {
			e.addBatch(topic, s[i:j], i, at)
		} else {
			for k := i; k < j; k++ {
				e.rejected = append(e.rejected, at(k))
			}
		}
		i = j
	}
	return e.msgs, e.rejected
}

// addBatch appends the message of s, the samples of one asset, the first
// at index first of the grouped batch (at maps it to the batch index).
// When that message would exceed e.limit it appends the messages of each
// half instead, in order, so the asset's samples still go out in batch
// order; a sample too large alone goes to e.oversize. Halving re-encodes
// O(n log n) samples at worst, and only for assets over the limit.
func (e *encoder) addBatch(topic string, s []model.Sample, first int, at func(int) int32) {
	start := len(e.buf)
	e.buf = payload.AppendBatch(e.buf, s)
	if e.tooLarge(topic, start) {
		e.buf = e.buf[:start]
		if len(s) == 1 {
			e.oversize = append(e.oversize, at(first))
			return
		}
		half := len(s) / 2
		e.addBatch(topic, s[:half], first, at)
		e.addBatch(topic, s[half:], first+half, at)
		return
	}
	hist := false
	for k := range s {
		hist = hist || s[k].Historical
		e.origin = append(e.origin, at(first+k))
	}
	e.add(topic, start, len(s), hist)
}

// tooLarge reports whether the PUBLISH of topic with the payload
// e.buf[start:] would exceed e.limit.
func (e *encoder) tooLarge(topic string, start int) bool {
	return e.limit > 0 && publishSize(topic, len(e.buf)-start) > e.limit
}

// publishSize is an upper bound of the size of the MQTT 5 PUBLISH packet
// that carries payload bytes to topic, as the sink sends it (no
// properties): the fixed header byte, the remaining length (1 to 4
// bytes), the topic with its 2-byte length, the packet identifier (counted
// at QoS 0 too), the property length (one byte, 0) and the payload.
func publishSize(topic string, payload int) int {
	rem := 2 + len(topic) + 2 + 1 + payload
	n := 1
	for v := rem; v >= 128; v >>= 7 {
		n++
	}
	return 1 + n + rem
}

// topicErr says why the topic of a sample's path is invalid.
func (e *encoder) topicErr(path string) error {
	return validateTopic(joinTopic(e.prefix, e.key(path)))
}

// group returns batch with the samples of each asset together, assets in
// the order they first appear, each asset's samples in batch order (so
// each tag's). A counting sort: one map lookup per sample, no comparisons
// — a stable sort of a batch scattered over 100 assets (an OPC UA
// notification in the server's order) cost more than the publishing.
func (e *encoder) group(batch []model.Sample) ([]model.Sample, []int32) {
	if e.groupOf == nil {
		e.groupOf = make(map[string]int32)
	}
	clear(e.groupOf)
	e.groupLen = e.groupLen[:0]
	e.sampleGroup = e.sampleGroup[:0]
	for i := range batch {
		key := e.key(batch[i].Path)
		g, ok := e.groupOf[key]
		if !ok {
			g = int32(len(e.groupLen))
			e.groupOf[key] = g
			e.groupLen = append(e.groupLen, 0)
		}
		e.groupLen[g]++
		e.sampleGroup = append(e.sampleGroup, g)
	}
	if len(e.groupLen) == 1 {
		return batch, nil // one asset: nothing to move
	}
	next := 0 // groupLen becomes each group's next free index
	for g, n := range e.groupLen {
		e.groupLen[g] = int32(next)
		next += int(n)
	}
	e.scratch = slices.Grow(e.scratch[:0], len(batch))[:len(batch)]
	e.scratchIdx = slices.Grow(e.scratchIdx[:0], len(batch))[:len(batch)]
	for i, g := range e.sampleGroup {
		e.scratch[e.groupLen[g]] = batch[i]
		e.scratchIdx[e.groupLen[g]] = int32(i)
		e.groupLen[g]++
	}
	return e.scratch, e.scratchIdx
}

// add appends the message of the last samples appended to origin.
func (e *encoder) add(topic string, start, samples int, historical bool) {
	e.msgs = append(e.msgs, message{topic: topic, start: start, end: len(e.buf), samples: samples,
		olo: int32(len(e.origin) - samples), ohi: int32(len(e.origin)), hash: fnv32(topic), historical: historical})
}

// key is what a sample is grouped and addressed by: its path in sample
// mode, its asset in batch mode. A single-level path has no asset: it goes
// to the prefix topic, or to its own path when there is no prefix.
func (e *encoder) key(path string) string {
	if !e.batch {
		return path
	}
	asset, _ := payload.Asset(path)
	if asset == "" && e.prefix == "" {
		return path
	}
	return asset
}

// topic returns the topic for key, building and validating it on first
// use. The samples of an invalid topic are rejected (dead-lettered by the
// engine): a broker would close the connection over it and the batch
// would never get out.
func (e *encoder) topic(key string) (string, bool) {
	if t, ok := e.topics[key]; ok {
		return t, t != ""
	}
	if len(e.topics) >= maxTopicCache {
		clear(e.topics)
	}
	t := joinTopic(e.prefix, key)
	if !e.unchecked && validateTopic(t) != nil {
		t = ""
	}
	e.topics[key] = t
	return t, t != ""
}

func (e *encoder) payload(m *message) []byte { return e.buf[m.start:m.end] }

// shard assigns message indexes to workers by topic hash, keeping batch
// order within each worker.
func (e *encoder) shard(workers int) [][]int32 {
	if len(e.shards) < workers {
		e.shards = append(e.shards, make([][]int32, workers-len(e.shards))...)
	}
	sh := e.shards[:workers]
	for i := range sh {
		sh[i] = sh[i][:0]
	}
	for i := range e.msgs {
		w := e.msgs[i].hash % uint32(workers)
		sh[w] = append(sh[w], int32(i))
	}
	return sh
}

// reset drops references to the last batch's strings once it is published.
func (e *encoder) reset() {
	clear(e.scratch)
	clear(e.valid)
}

// abandon gives up the payload buffer after a failed Write: the MQTT
// library may still read payloads it was handed.
func (e *encoder) abandon() {
	e.buf = nil
	clear(e.scratch)
	clear(e.valid)
}

// fnv32 is FNV-1a, inline so that hashing a topic does not allocate.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
