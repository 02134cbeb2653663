package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// ReasonNull is the quality reason of a sample whose payload value was JSON
// null: the producer said "no value".
const ReasonNull = "null value"

// errEmpty marks an empty payload: on a retained topic it is how a producer
// deletes the retained message, so it is skipped rather than counted as an
// error.
var errEmpty = errors.New("empty payload")

// maxPathCache bounds each route's topic → path cache. Topics under a
// wildcard are not known in advance; a producer flooding new topics only
// makes the cache start over.
const maxPathCache = 1 << 16

// route is one subscription, compiled: which topics it takes and how their
// payloads become samples. A route is used by one message goroutine at a
// time.
type route struct {
	topic  string // as subscribed (may be $share/…)
	filter string // what topics are matched against
	qos    byte
	strip  string
	tmpl   template
	format string
	value  selector
	ts     selector // nil: arrival time
	unit   string
	fields []field

	paths map[string]pathEntry
}

type field struct {
	name string
	sel  selector
}

// pathEntry caches the tag path(s) for one topic; err is set when the
// topic cannot be mapped.
type pathEntry struct {
	path   string
	fields []string // json fields: path/<name>
	err    error
}

// newRoute compiles a validated subscription with defaults applied.
func newRoute(c SubscriptionConfig) (*route, error) {
	filter, err := parseFilter(c.Topic)
	if err != nil {
		return nil, err
	}
	tmpl, err := parseTemplate(c.Path)
	if err != nil {
		return nil, err
	}
	r := &route{topic: c.Topic, filter: filter, qos: byte(*c.QoS), strip: c.StripPrefix, tmpl: tmpl,
		format: c.Format, unit: c.JSON.TimestampUnit, paths: make(map[string]pathEntry)}
	if c.Format == FormatJSON {
		if len(c.JSON.Fields) == 0 {
			if r.value, err = parseSelector(c.JSON.Value); err != nil {
				return nil, err
			}
		}
		for _, f := range c.JSON.Fields {
			sel, err := parseSelector(f.Value)
			if err != nil {
				return nil, err
			}
			r.fields = append(r.fields, field{name: f.Name, sel: sel})
		}
		if c.JSON.Timestamp != "" {
			if r.ts, err = parseSelector(c.JSON.Timestamp); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// pathFor maps topic to its tag path(s), caching the result.
func (r *route) pathFor(topic string) pathEntry {
	if e, ok := r.paths[topic]; ok {
		return e
	}
	if len(r.paths) >= maxPathCache {
		clear(r.paths)
	}
	e := r.buildPath(topic)
	r.paths[topic] = e
	return e
}

func (r *route) buildPath(topic string) pathEntry {
	rest, ok := strings.CutPrefix(topic, r.strip)
	if !ok {
		return pathEntry{err: fmt.Errorf("topic %q does not start with strip_prefix %q", topic, r.strip)}
	}
	p, err := r.tmpl.render(rest)
	if err != nil {
		return pathEntry{err: err}
	}
	if r.format == FormatWeir {
		// A batch payload's samples get <path>/<tag>; the path itself is
		// checked per sample, after the tag is known.
		if p == "" {
			return pathEntry{}
		}
	}
	p = model.EscapePath(p) // topic levels come from publishers
	if err := model.ValidatePath(p); err != nil {
		return pathEntry{err: err}
	}
	e := pathEntry{path: p}
	for _, f := range r.fields {
		fp := model.EscapePath(p + "/" + f.name)
		if err := model.ValidatePath(fp); err != nil {
			return pathEntry{err: err}
		}
		e.fields = append(e.fields, fp)
	}
	return e
}

// decode appends the samples of one message to dst. now (Unix ns) is the
// arrival time: EdgeTime, and SourceTime when the payload has none. On
// error dst is returned unchanged in length.
func (r *route) decode(dst []model.Sample, topic string, data []byte, now int64) ([]model.Sample, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return dst, errEmpty
	}
	pe := r.pathFor(topic)
	if pe.err != nil {
		return dst, pe.err
	}
	switch r.format {
	case FormatRaw:
		v, err := rawValue(data)
		if err != nil {
			return dst, err
		}
		return append(dst, model.Sample{Path: pe.path, Value: v, SourceTime: now, EdgeTime: now}), nil
	case FormatWeir:
		return decodeWeir(dst, pe.path, data, now)
	}
	return r.decodeJSON(dst, pe, data, now)
}

func (r *route) decodeJSON(dst []model.Sample, pe pathEntry, data []byte, now int64) ([]model.Sample, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return dst, fmt.Errorf("json: %w", err)
	}
	if dec.More() {
		return dst, errors.New("json: trailing data after the document")
	}
	ts := now
	if r.ts != nil {
		tv, ok := r.ts.get(doc)
		if !ok {
			return dst, errors.New("json: timestamp not found")
		}
		var err error
		if ts, err = jsonTimestamp(tv, r.unit); err != nil {
			return dst, fmt.Errorf("json: %w", err)
		}
	}
	n := len(dst)
	if len(r.fields) == 0 {
		return appendJSONSample(dst, pe.path, r.value, doc, ts, now)
	}
	found := 0
	for i, f := range r.fields {
		if _, ok := f.sel.get(doc); !ok {
			continue // a message may carry a subset of the fields
		}
		var err error
		if dst, err = appendJSONSample(dst, pe.fields[i], f.sel, doc, ts, now); err != nil {
			return dst[:n], fmt.Errorf("field %s: %w", f.name, err)
		}
		found++
	}
	if found == 0 {
		return dst, errors.New("json: none of the fields found")
	}
	return dst, nil
}

func appendJSONSample(dst []model.Sample, path string, sel selector, doc any, ts, now int64) ([]model.Sample, error) {
	raw, ok := sel.get(doc)
	if !ok {
		return dst, errors.New("json: value not found")
	}
	v, err := jsonValue(raw)
	if err != nil {
		return dst, fmt.Errorf("json: %w", err)
	}
	s := model.Sample{Path: path, Value: v, SourceTime: ts, EdgeTime: now}
	if !v.IsValid() {
		s.Quality = model.Quality{Code: model.Bad, Reason: ReasonNull}
	}
	return append(dst, s), nil
}

// decodeWeir decodes Weir's own payload (package internal/payload): a
// single sample for path, or a batch whose elements become path/<tag>.
// Value, quality, reason, ts and historical are kept; EdgeTime is this
// arrival and Seq is left to the engine.
func decodeWeir(dst []model.Sample, path string, data []byte, now int64) ([]model.Sample, error) {
	if t := bytes.TrimSpace(data); bytes.Equal(t, []byte("online")) || bytes.Equal(t, []byte("offline")) {
		// The MQTT sink's status topic (<prefix>/_status/<client id>)
		// lives under the same prefix as its data: not a sample.
		return dst, errEmpty
	}
	n := len(dst)
	if bytes.Contains(data, []byte(`"samples"`)) {
		batch, err := payload.DecodeBatch(data, path)
		if err == nil {
			for _, s := range batch {
				s.Path = model.EscapePath(s.Path) // tag names come from the payload
				if err := model.ValidatePath(s.Path); err != nil {
					return dst[:n], err
				}
				dst = append(dst, weirSample(s, now))
			}
			return dst, nil
		}
		// Perhaps a single sample whose value is the string "samples".
		if _, serr := payload.DecodeSample(data); serr != nil {
			return dst, err
		}
	}
	if path == "" {
		return dst, errors.New("path template gives an empty path")
	}
	s, err := payload.DecodeSample(data)
	if err != nil {
		return dst, err
	}
	s.Path = path
	return append(dst, weirSample(s, now)), nil
}

func weirSample(s model.Sample, now int64) model.Sample {
	if s.SourceTime == 0 {
		s.SourceTime = now
	}
	s.EdgeTime = now
	s.Seq = 0
	return s
}

// rawValue reads a plain payload: true/false (any case), an integer (Int,
// or Uint beyond int64), a float (including NaN and Inf), or else the text
// as a string, which must be UTF-8. Surrounding white space is ignored.
func rawValue(data []byte) (model.Value, error) {
	s := string(bytes.TrimSpace(data))
	switch strings.ToLower(s) {
	case "true":
		return model.Bool(true), nil
	case "false":
		return model.Bool(false), nil
	}
	if looksNumeric(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return model.Int(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return model.Uint(u), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return model.Float(f), nil
		}
	}
	if !utf8.ValidString(s) {
		return model.Value{}, errors.New("raw payload is not UTF-8 text")
	}
	return model.String(s), nil
}

// looksNumeric admits decimal numbers and the NaN/Inf spellings, so that
// strconv's hex floats and underscores ("0x1p4", "1_000") stay strings.
func looksNumeric(s string) bool {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "nan", "inf", "infinity":
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}
