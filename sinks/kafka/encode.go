package kafka

import (
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
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
}

func newEncoder(batch bool, node string) encoder {
	return encoder{batch: batch, maxValue: maxValueBytes, node: []byte(node), groups: make(map[string]int32)}
}

// encode turns batch into records for topic and returns them with the
// number of samples dropped for being too large.
func (e *encoder) encode(topic string, batch []model.Sample, log *slog.Logger) (recs []kgo.Record, msgs []message, dropped int) {
	e.buf = e.buf[:0]
	e.msgs = e.msgs[:0]
	if !e.batch {
		for i := range batch {
			s := &batch[i]
			start := len(e.buf)
			e.buf = payload.AppendSample(e.buf, *s)
			if len(e.buf)-start > e.maxValue {
				e.buf = e.buf[:start]
				log.Warn("dropping sample: larger than a record may be", "path", s.Path, "seq", s.Seq)
				dropped++
				continue
			}
			e.add(s.Path, span{start, len(e.buf)}, s.Seq, i, 1, s.Historical)
		}
		return e.build(topic), e.msgs, dropped
	}

	// A counting sort by asset keeps batch order inside each asset and
	// orders assets by their first sample.
	clear(e.groups)
	e.groupKeys, e.counts, e.group = e.groupKeys[:0], e.counts[:0], e.group[:0]
	for i := range batch {
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
		e.order[e.counts[g]] = int32(i)
		e.counts[g]++
	}
	start := int32(0)
	for g, key := range e.groupKeys {
		end := e.counts[g]
		dropped += e.encodeRun(batch, key, e.order[start:end], log)
		start = end
	}
	return e.build(topic), e.msgs, dropped
}

// encodeRun encodes batch[idx...] of one asset as one record, split in
// halves while the value is too large.
func (e *encoder) encodeRun(batch []model.Sample, key string, idx []int32, log *slog.Logger) int {
	e.scratch = e.scratch[:0]
	hist := false
	for _, i := range idx {
		e.scratch = append(e.scratch, batch[i])
		hist = hist || batch[i].Historical
	}
	start := len(e.buf)
	e.buf = payload.AppendBatch(e.buf, e.scratch)
	if len(e.buf)-start > e.maxValue {
		e.buf = e.buf[:start]
		if len(idx) == 1 {
			log.Warn("dropping sample: larger than a record may be", "path", batch[idx[0]].Path, "seq", batch[idx[0]].Seq)
			return 1
		}
		h := len(idx) / 2
		return e.encodeRun(batch, key, idx[:h], log) + e.encodeRun(batch, key, idx[h:], log)
	}
	first := int(idx[0])
	e.add(key, span{start, len(e.buf)}, batch[first].Seq, first, len(idx), hist)
	return 0
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
	e.msgs = append(e.msgs, message{key: k, value: value, seq: sq, first: first, samples: samples, historical: hist})
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
