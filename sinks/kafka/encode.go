package kafka

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Record header names.
const (
	HeaderSeq        = "weir-seq"
	HeaderHistorical = "weir-historical"
	// HeaderNode names the gateway (client_id, by default node.id), so a
	// consumer of several gateways can tell them apart and de-duplicate
	// by (node, seq).
	HeaderNode = "weir-node"
)

// maxValueBytes keeps a record, with key and headers, under the default
// 1 MB limits of brokers (message.max.bytes) and of the client's batches.
// Batch values beyond it are split; a single sample beyond it is dropped.
const maxValueBytes = 900_000

var (
	valTrue  = []byte("true")
	valFalse = []byte("false")
)

// span locates bytes in encoder.buf.
type span struct{ start, end int }

// message is one record of a Write before it is built.
type message struct {
	key, value, seq span
	// first is the batch index of the record's first sample: a failed
	// record means nothing from there on is confirmed.
	first      int
	samples    int
	historical bool
	// olo, ohi: the batch indexes of the record's samples are
	// encoder.origin[olo:ohi], for rejecting exactly them.
	olo, ohi int32
}

// encoder turns a batch into records. Its buffers are reused between
// successful Writes.
type encoder struct {
	batch    bool
	maxValue int
	node     []byte // value of HeaderNode

	buf     []byte
	msgs    []message
	recs    []kgo.Record
	headers []kgo.RecordHeader

	// Batch mode: grouping by asset in order of first appearance.
	groups    map[string]int32
	groupKeys []string
	group     []int32
	counts    []int32
	order     []int32
	scratch   []model.Sample

	origin   []int32
	rejected *pipeline.RejectedError
}

func newEncoder(batch bool, node string) encoder {
	return encoder{batch: batch, maxValue: maxValueBytes, node: []byte(node), groups: make(map[string]int32)}
}

// encode turns batch into records for topic and returns them with the
// samples that cannot be sent, rejected by batch index (a tag path that is
// not UTF-8: the key would carry it, but no consumer could name it; a
// single sample larger than a record may be), or nil.
func (e *encoder) encode(topic string, batch []model.Sample) (recs []kgo.Record, msgs []message, rejected *pipeline.RejectedError) {
	e.buf = e.buf[:0]
	e.msgs = e.msgs[:0]
	e.origin = e.origin[:0]
	e.rejected = nil
	if !e.batch {
		for i := range batch {
			s := &batch[i]
			if !utf8.ValidString(s.Path) {
				e.rejectName(i, s.Path)
				continue
			}
			start := len(e.buf)
			e.buf = payload.AppendSample(e.buf, *s)
			if size := len(e.buf) - start; size > e.maxValue {
				e.buf = e.buf[:start]
				e.rejectSize(i, size)
				continue
			}
			e.origin = append(e.origin, int32(i))
			e.add(s.Path, span{start, len(e.buf)}, s.Seq, i, 1, s.Historical)
		}
		return e.build(topic), e.msgs, e.rejected
	}

	// A counting sort by asset keeps batch order inside each asset and
	// orders assets by their first sample.
	clear(e.groups)
	e.groupKeys, e.counts, e.group = e.groupKeys[:0], e.counts[:0], e.group[:0]
	for i := range batch {
		if !utf8.ValidString(batch[i].Path) {
			e.group = append(e.group, -1)
			e.rejectName(i, batch[i].Path)
			continue
		}
		asset, _ := payload.Asset(batch[i].Path)
		g, seen := e.groups[asset]
		if !seen {
			g = int32(len(e.groupKeys))
			e.groups[asset] = g
			e.groupKeys = append(e.groupKeys, asset)
			e.counts = append(e.counts, 0)
		}
		e.group = append(e.group, g)
		e.counts[g]++
	}
	var total int32
	for g, n := range e.counts {
		e.counts[g] = total
		total += n
	}
	e.order = append(e.order[:0], make([]int32, total)...)
	for i, g := range e.group {
		if g >= 0 {
			e.order[e.counts[g]] = int32(i)
			e.counts[g]++
		}
	}
	start := int32(0)
	for g, key := range e.groupKeys {
		end := e.counts[g]
		e.encodeRun(batch, key, e.order[start:end])
		start = end
	}
	return e.build(topic), e.msgs, e.rejected
}

// rejectName rejects batch[i], whose path is not UTF-8.
func (e *encoder) rejectName(i int, path string) {
	pipeline.Reject(&e.rejected, i, pipeline.CauseInvalidName, fmt.Errorf("tag path %q is not valid UTF-8", path))
}

// rejectSize rejects batch[i], larger than a record may be on its own.
func (e *encoder) rejectSize(i, size int) {
	pipeline.Reject(&e.rejected, i, pipeline.CauseOversize,
		fmt.Errorf("sample encodes to %d bytes, a record may hold %d", size, e.maxValue))
}

// encodeRun encodes batch[idx...] of one asset as one record, split in
// halves while the value is too large; a single sample too large is
// rejected.
func (e *encoder) encodeRun(batch []model.Sample, key string, idx []int32) {
	e.scratch = e.scratch[:0]
	hist := false
	for _, i := range idx {
		e.scratch = append(e.scratch, batch[i])
		hist = hist || batch[i].Historical
	}
	start := len(e.buf)
	e.buf = payload.AppendBatch(e.buf, e.scratch)
	if size := len(e.buf) - start; size > e.maxValue {
		e.buf = e.buf[:start]
		if len(idx) == 1 {
			e.rejectSize(int(idx[0]), size)
			return
		}
		h := len(idx) / 2
		e.encodeRun(batch, key, idx[:h])
		e.encodeRun(batch, key, idx[h:])
		return
	}
	first := int(idx[0])
	e.origin = append(e.origin, idx...)
	e.add(key, span{start, len(e.buf)}, batch[first].Seq, first, len(idx), hist)
}

// add appends the key and the seq header value to buf and records the
// message.
func (e *encoder) add(key string, value span, seq uint64, first, samples int, hist bool) {
	k := span{start: len(e.buf)}
	e.buf = append(e.buf, key...)
	k.end = len(e.buf)
	sq := span{start: len(e.buf)}
	e.buf = strconv.AppendUint(e.buf, seq, 10)
	sq.end = len(e.buf)
	e.msgs = append(e.msgs, message{key: k, value: value, seq: sq, first: first, samples: samples, historical: hist,
		olo: int32(len(e.origin) - samples), ohi: int32(len(e.origin))})
}

// build makes the records once buf no longer grows, so that the slices
// into it stay valid.
func (e *encoder) build(topic string) []kgo.Record {
	n := len(e.msgs)
	if cap(e.recs) < n {
		e.recs = make([]kgo.Record, n)
		e.headers = make([]kgo.RecordHeader, 3*n)
	}
	e.recs, e.headers = e.recs[:n], e.headers[:3*n]
	for i := range e.msgs {
		m := &e.msgs[i]
		h := e.headers[3*i : 3*i+3 : 3*i+3]
		h[0] = kgo.RecordHeader{Key: HeaderSeq, Value: e.buf[m.seq.start:m.seq.end]}
		h[1] = kgo.RecordHeader{Key: HeaderHistorical, Value: valFalse}
		if m.historical {
			h[1].Value = valTrue
		}
		h[2] = kgo.RecordHeader{Key: HeaderNode, Value: e.node}
		e.recs[i] = kgo.Record{
			Topic:   topic,
			Key:     e.buf[m.key.start:m.key.end:m.key.end],
			Value:   e.buf[m.value.start:m.value.end:m.value.end],
			Headers: h,
		}
	}
	return e.recs
}

// done drops references to the last batch once it is confirmed.
func (e *encoder) done() { clear(e.scratch[:cap(e.scratch)]) }

// abandon gives up every buffer after a Write that returned before the
// client answered for all records: the client still holds them.
func (e *encoder) abandon() {
	e.buf, e.recs, e.headers = nil, nil, nil
	e.done()
}
