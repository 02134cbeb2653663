package nats

import (
	"fmt"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// maxSubjectCache bounds the subject cache; tag sets are static, so
// reaching it means paths churn and the cache is simply rebuilt.
const maxSubjectCache = 1 << 16

// headerRoom is what the payload limit keeps free for the headers and
// their framing (message id, expected stream, historical flag).
const headerRoom = 1024

// message is one NATS message of a Write: its payload lives in
// encoder.buf[start:end].
type message struct {
	subject    string
	start, end int
	// first is the batch index of the message's first sample: a failed
	// message means nothing from there on is confirmed.
	first             int
	samples           int
	firstSeq, lastSeq uint64
	historical        bool
}

// encoder turns a batch into messages. Its buffers are reused between
// Writes so that the steady state allocates only what the NATS library
// does.
type encoder struct {
	prefix string
	batch  bool
	// maxPayload is the largest payload the server accepts, less room for
	// headers; set at Connect from the server's INFO.
	maxPayload int

	buf  []byte
	msgs []message
	// subjects caches the subject of each tag path: the tag's in sample
	// mode, its asset's in batch mode; "" marks an invalid path.
	subjects map[string]string

	// Batch mode: grouping by subject in order of first appearance.
	groups    map[string]int32
	groupSubj []string
	group     []int32 // per sample: its group, -1 when dropped
	counts    []int32
	order     []int32 // batch indexes, grouped, batch order within a group
	scratch   []model.Sample

	// rejected collects the samples of the last encode that cannot be
	// sent (invalid path, larger than max_payload alone).
	rejected *pipeline.RejectedError
}

func newEncoder(prefix string, batch bool) encoder {
	return encoder{
		prefix:     prefix,
		batch:      batch,
		maxPayload: 1 << 20,
		subjects:   make(map[string]string),
		groups:     make(map[string]int32),
	}
}

// encode fills e.msgs from batch and returns them with the samples that
// cannot be sent, rejected by batch index (an invalid path, or a single
// sample larger than the server's max_payload), or nil. Messages are
// ordered by their first sample, so everything before a message's first
// sample belongs to earlier messages.
func (e *encoder) encode(batch []model.Sample) (msgs []message, rejected *pipeline.RejectedError) {
	e.buf = e.buf[:0]
	e.msgs = e.msgs[:0]
	e.rejected = nil
	if !e.batch {
		for i := range batch {
			subj, ok := e.subject(batch[i].Path)
			if !ok {
				e.rejectPath(i, batch[i].Path)
				continue
			}
			start := len(e.buf)
			e.buf = payload.AppendSample(e.buf, batch[i])
			if len(e.buf)-start > e.maxPayload {
				e.buf = e.buf[:start]
				e.rejectSize(i, len(e.buf)-start)
				continue
			}
			e.msgs = append(e.msgs, message{
				subject: subj, start: start, end: len(e.buf), first: i, samples: 1,
				firstSeq: batch[i].Seq, lastSeq: batch[i].Seq, historical: batch[i].Historical,
			})
		}
		return e.msgs, e.rejected
	}

	// Batch mode: a counting sort by subject keeps batch order inside each
	// group and orders groups by their first sample.
	clear(e.groups)
	e.groupSubj = e.groupSubj[:0]
	e.counts = e.counts[:0]
	e.group = e.group[:0]
	for i := range batch {
		subj, ok := e.subject(batch[i].Path)
		if !ok {
			e.group = append(e.group, -1)
			e.rejectPath(i, batch[i].Path)
			continue
		}
		g, seen := e.groups[subj]
		if !seen {
			g = int32(len(e.groupSubj))
			e.groups[subj] = g
			e.groupSubj = append(e.groupSubj, subj)
			e.counts = append(e.counts, 0)
		}
		e.group = append(e.group, g)
		e.counts[g]++
	}
	var total int32
	for g, n := range e.counts { // counts become start offsets
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
	for g, subj := range e.groupSubj {
		end := e.counts[g]
		e.encodeRun(batch, subj, e.order[start:end])
		start = end
	}
	return e.msgs, e.rejected
}

// rejectPath rejects batch[i], whose path cannot become a subject.
func (e *encoder) rejectPath(i int, path string) {
	_, err := e.build(path)
	if err == nil {
		err = fmt.Errorf("tag path %q cannot become a subject", path)
	}
	pipeline.Reject(&e.rejected, i, pipeline.CauseInvalidName, err)
}

// rejectSize rejects batch[i], larger than a message may be on its own.
func (e *encoder) rejectSize(i, size int) {
	pipeline.Reject(&e.rejected, i, pipeline.CauseOversize,
		fmt.Errorf("sample encodes to %d bytes, the server's max_payload leaves %d", size, e.maxPayload))
}

// encodeRun encodes the samples batch[idx...] of one subject as one
// message, split in halves while the payload exceeds max_payload; a single
// sample too large is rejected.
func (e *encoder) encodeRun(batch []model.Sample, subj string, idx []int32) {
	e.scratch = e.scratch[:0]
	hist := false
	for _, i := range idx {
		e.scratch = append(e.scratch, batch[i])
		hist = hist || batch[i].Historical
	}
	start := len(e.buf)
	e.buf = payload.AppendBatch(e.buf, e.scratch)
	if size := len(e.buf) - start; size > e.maxPayload {
		e.buf = e.buf[:start]
		if len(idx) == 1 {
			e.rejectSize(int(idx[0]), size)
			return
		}
		h := len(idx) / 2
		e.encodeRun(batch, subj, idx[:h])
		e.encodeRun(batch, subj, idx[h:])
		return
	}
	first, last := int(idx[0]), int(idx[len(idx)-1])
	e.msgs = append(e.msgs, message{
		subject: subj, start: start, end: len(e.buf), first: first, samples: len(idx),
		firstSeq: batch[first].Seq, lastSeq: batch[last].Seq, historical: hist,
	})
}

// subject returns the subject for a sample's path, building and validating
// it on first use. The samples of an invalid path are rejected (the
// engine dead-letters them): the server would never store them and the
// batch would never get out.
func (e *encoder) subject(path string) (string, bool) {
	if s, ok := e.subjects[path]; ok {
		return s, s != ""
	}
	if len(e.subjects) >= maxSubjectCache {
		clear(e.subjects)
	}
	subj, err := e.build(path)
	if err != nil {
		subj = ""
	}
	e.subjects[path] = subj
	return subj, subj != ""
}

func (e *encoder) build(path string) (string, error) {
	if err := model.ValidatePath(path); err != nil {
		return "", err
	}
	if !e.batch {
		return Subject(e.prefix, path)
	}
	asset, _ := payload.Asset(path)
	return Subject(e.prefix, asset)
}

func (e *encoder) payload(m *message) []byte { return e.buf[m.start:m.end] }

// done drops references to the last batch's strings once it is published.
func (e *encoder) done() { clear(e.scratch[:cap(e.scratch)]) }

// abandon gives up the payload buffer after a failed Write: the NATS
// library may still hold payloads of messages it has not answered.
func (e *encoder) abandon() {
	e.buf = nil
	e.done()
}
