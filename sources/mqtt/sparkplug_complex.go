package mqtt

import (
	"fmt"
	"maps"
	"slices"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// maxTemplateDepth bounds the nesting of Template instances in a BIRTH;
// real UDTs nest a few levels, and each level costs a recursion.
const maxTemplateDepth = 16

// spWalk is the state of handling the metrics of one BIRTH or DATA
// payload.
type spWalk struct {
	n     *spNode
	birth bool
	now   int64
	errs  []error
	// unknown: an alias, metric name or template member name that the
	// BIRTH did not have (DATA only).
	unknown bool
}

func (w *spWalk) fail(err error) { w.errs = append(w.errs, err) }

// inherited is what a metric hands down to the members of a Template
// instance that do not set it themselves; at the top it comes from the
// payload.
type inherited struct {
	ts   int64                     // source time, ns
	qm   *sparkplugb.Metric        // nearest metric with a Quality property
	qv   *sparkplugb.PropertyValue // its Quality
	hist bool
}

func (in inherited) from(m *sparkplugb.Metric, now int64) inherited {
	if m.Timestamp != nil {
		in.ts = msToNs(m.GetTimestamp(), now)
	}
	if qv := sparkplugb.Property(m, sparkplugb.QualityProperty); qv != nil {
		in.qm, in.qv = m, qv
	}
	if m.IsHistorical != nil {
		in.hist = m.GetIsHistorical()
	}
	return in
}

// isComplex reports the datatypes whose metric is not one tag but several:
// a Template instance (one per member) and a DataSet (one per column).
func isComplex(dt sparkplugb.DataType) bool {
	return dt == sparkplugb.DataType_Template || dt == sparkplugb.DataType_DataSet
}

// birthType is the datatype a BIRTH metric is registered with: its own,
// or, when a publisher left it out, the one its value field implies for
// the complex types (a scalar without datatype is read by field anyway).
func birthType(m *sparkplugb.Metric) sparkplugb.DataType {
	dt := sparkplugb.DataType(m.GetDatatype())
	if dt == sparkplugb.DataType_Unknown {
		switch m.GetValue().(type) {
		case *sparkplugb.Payload_Metric_TemplateValue:
			return sparkplugb.DataType_Template
		case *sparkplugb.Payload_Metric_DatasetValue:
			return sparkplugb.DataType_DataSet
		}
	}
	return dt
}

// tags is the number of registry entries meta stands for in the node's
// metric count: itself and, for a Template or DataSet, its members — an
// empty container counts too, or a BIRTH of many empty ones would grow
// the registry past its bound.
func (meta *spMetric) tags() int {
	n := 1
	for _, c := range meta.members {
		n += c.tags()
	}
	return n
}

// leaves calls f for every tag under meta (meta itself when it is not a
// Template or DataSet), in name order so that stale marking is stable.
func (meta *spMetric) leaves(f func(*spMetric)) {
	if !isComplex(meta.dt) {
		f(meta)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(meta.members)) {
		meta.members[k].leaves(f)
	}
}

// register builds the registry entry of BIRTH metric m at path. A
// Template instance's members are registered too, recursively, each a tag
// counted against maxMetricsPerNode; a DataSet's columns are registered
// when its values come. An instance nested deeper than maxTemplateDepth or
// beyond the node's tag budget is an error for the whole metric: it stays
// registered, without members and skipped, so that its DATA is neither
// emitted nor taken for an unknown alias.
func (h *spHost) register(w *spWalk, d *spDevice, path string, m *sparkplugb.Metric, skip bool) *spMetric {
	before := w.n.count
	meta, err := h.registerAt(w, d, path, m, skip, 0)
	if err != nil {
		w.fail(err)
		w.n.count = before + 1 // the refused metric stays registered, alone
		meta.members, meta.memberAliases, meta.skip = nil, nil, true
	}
	return meta
}

func (h *spHost) registerAt(w *spWalk, d *spDevice, path string, m *sparkplugb.Metric, skip bool, depth int) (*spMetric, error) {
	// Names come from the edge node: escaped by the one rule of
	// model.EscapePath, so "bad\xffname" is the tag "bad%FFname" instead of
	// a topic no broker accepts.
	path = model.EscapePath(path)
	meta := &spMetric{path: path, dt: birthType(m), device: d, skip: skip}
	if err := model.ValidatePath(path); err != nil && !meta.skip {
		// Still registered, so that its DATA is not an unknown alias.
		w.fail(fmt.Errorf("metric %q: %w", path, err))
		meta.skip = true
	}
	w.n.count++
	if !isComplex(meta.dt) {
		return meta, nil
	}
	meta.members = map[string]*spMetric{}
	if meta.dt == sparkplugb.DataType_DataSet || meta.skip {
		return meta, nil
	}
	if depth >= maxTemplateDepth {
		return meta, fmt.Errorf("metric %s: templates nested deeper than %d levels", path, maxTemplateDepth)
	}
	if m.GetTemplateValue() == nil {
		// A BIRTH must list every member; without them each DATA would
		// look like unknown members and ask for a rebirth forever.
		return meta, fmt.Errorf("metric %s: template instance without members in the birth", path)
	}
	for _, mm := range m.GetTemplateValue().GetMetrics() {
		name := mm.GetName()
		switch {
		case name == "":
			w.fail(fmt.Errorf("metric %s: template member without a name", path))
			continue
		case sparkplugb.IsTemplateDefinition(mm):
			continue
		case w.n.count >= maxMetricsPerNode:
			return meta, fmt.Errorf("metric %s: edge node %s/%s: more than %d metrics", path, w.n.group, w.n.id, maxMetricsPerNode)
		}
		if old := meta.members[name]; old != nil {
			w.n.count -= old.tags()
		}
		child, err := h.registerAt(w, d, path+"/"+name, mm, false, depth+1)
		meta.members[name] = child
		if mm.Alias != nil {
			// Members are addressed by name; an edge node that gave them
			// aliases may send DATA by alias alone.
			if meta.memberAliases == nil {
				meta.memberAliases = map[uint64]*spMetric{}
			}
			meta.memberAliases[mm.GetAlias()] = child
		}
		if err != nil {
			return meta, err
		}
	}
	return meta, nil
}

// appendMetric emits metric m, registered as meta: one sample for a
// scalar, one per member present for a Template instance (recursively),
// one per column for a DataSet. Errors go to w; the caller carries on with
// the other metrics of the payload.
func (h *spHost) appendMetric(dst []model.Sample, w *spWalk, meta *spMetric, m *sparkplugb.Metric, in inherited) []model.Sample {
	if meta.skip {
		return dst
	}
	in = in.from(m, w.now)
	switch meta.dt {
	case sparkplugb.DataType_Template:
		return h.appendTemplate(dst, w, meta, m, in)
	case sparkplugb.DataType_DataSet:
		return h.appendDataSet(dst, w, meta, m, in)
	case sparkplugb.DataType_PropertySet, sparkplugb.DataType_PropertySetList:
		if !m.GetIsNull() && m.GetValue() != nil {
			w.fail(fmt.Errorf("metric %s: unsupported datatype %s", meta.path, meta.dt))
			return dst
		}
	}
	v, err := sparkplugb.ValueAs(m, meta.dt)
	if err != nil {
		w.fail(fmt.Errorf("metric %s: %w", meta.path, err))
		return dst
	}
	return append(dst, h.sample(meta, v, in, w.now))
}

// appendTemplate emits the members of a Template instance that m carries:
// all of them in a BIRTH, the changed ones in DATA, found by name.
func (h *spHost) appendTemplate(dst []model.Sample, w *spWalk, meta *spMetric, m *sparkplugb.Metric, in inherited) []model.Sample {
	if m.GetIsNull() || m.GetValue() == nil {
		return h.appendNulls(dst, meta, in, w.now)
	}
	x, ok := m.GetValue().(*sparkplugb.Payload_Metric_TemplateValue)
	if !ok {
		w.fail(fmt.Errorf("metric %s: datatype Template with value field %T", meta.path, m.GetValue()))
		return dst
	}
	for _, mm := range x.TemplateValue.GetMetrics() {
		member := meta.members[mm.GetName()]
		if member == nil && mm.GetName() == "" && mm.Alias != nil {
			member = meta.memberAliases[mm.GetAlias()]
		}
		if member == nil {
			// In a BIRTH, register has reported it already.
			if !w.birth && !sparkplugb.IsTemplateDefinition(mm) {
				h.unknownAliases.Add(1)
				w.unknown = true
			}
			continue
		}
		dst = h.appendMetric(dst, w, member, mm, in)
	}
	return dst
}

// appendDataSet emits one array sample per column. Columns are taken from
// each message (a table may change shape) and registered on first sight;
// a table that is malformed or would exceed the node's tag budget yields
// nothing rather than part of it.
func (h *spHost) appendDataSet(dst []model.Sample, w *spWalk, meta *spMetric, m *sparkplugb.Metric, in inherited) []model.Sample {
	if m.GetIsNull() || m.GetValue() == nil {
		return h.appendNulls(dst, meta, in, w.now)
	}
	x, ok := m.GetValue().(*sparkplugb.Payload_Metric_DatasetValue)
	if !ok {
		w.fail(fmt.Errorf("metric %s: datatype DataSet with value field %T", meta.path, m.GetValue()))
		return dst
	}
	cols, err := sparkplugb.DataSetColumns(x.DatasetValue)
	if err != nil {
		w.fail(fmt.Errorf("metric %s: %w", meta.path, err))
		return dst
	}
	added := 0
	for _, c := range cols {
		if meta.members[c.Name] == nil {
			added++
		}
	}
	if w.n.count+added > maxMetricsPerNode {
		w.fail(fmt.Errorf("metric %s: edge node %s/%s: more than %d metrics", meta.path, w.n.group, w.n.id, maxMetricsPerNode))
		return dst
	}
	for _, c := range cols {
		col := meta.members[c.Name]
		if col == nil {
			col = &spMetric{path: model.EscapePath(meta.path + "/" + c.Name), dt: c.Type, device: meta.device}
			if err := model.ValidatePath(col.path); err != nil {
				w.fail(fmt.Errorf("metric %s: column %q: %w", meta.path, c.Name, err))
				col.skip = true
			}
			meta.members[c.Name] = col
			w.n.count++
		}
		if !col.skip {
			dst = append(dst, h.sample(col, c.Values, in, w.now))
		}
	}
	return dst
}

// appendNulls emits "no value" for every known tag of a Template or
// DataSet metric sent with is_null.
func (h *spHost) appendNulls(dst []model.Sample, meta *spMetric, in inherited, now int64) []model.Sample {
	meta.leaves(func(l *spMetric) {
		if !l.skip {
			dst = append(dst, h.sample(l, model.Value{}, in, now))
		}
	})
	return dst
}

// sample builds the sample of one tag from its value and what its metric
// (and the enclosing template metrics) say about time and quality.
func (h *spHost) sample(meta *spMetric, v model.Value, in inherited, now int64) model.Sample {
	s := model.Sample{Path: meta.path, Value: v, SourceTime: in.ts, EdgeTime: now, Historical: in.hist}
	if code, ok := sparkplugb.PropertyInt(in.qv); ok {
		s.Quality.Code = sparkplugb.QualityFromCode(code)
		switch {
		case s.Quality.IsGood():
		case weirReason(in.qm) != nil:
			// Another Weir's Sparkplug sink sends the reason along.
			s.Quality.Reason = *weirReason(in.qm)
		case code == int64(sparkplugb.QualityStale):
			s.Quality.Reason = model.ReasonStale
		default:
			s.Quality.Reason = ReasonEdgeBad
		}
	}
	if !v.IsValid() && s.Quality.IsGood() {
		s.Quality = model.Quality{Code: model.Bad, Reason: ReasonNull}
	}
	if !s.Historical {
		meta.current = true
	}
	return s
}

// weirReasonProperty is the metric property in which Weir's Sparkplug sink
// carries a sample's quality reason.
const weirReasonProperty = "weir_reason"

func weirReason(m *sparkplugb.Metric) *string {
	pv := sparkplugb.Property(m, weirReasonProperty)
	if pv == nil || pv.GetIsNull() {
		return nil
	}
	sv, ok := pv.GetValue().(*sparkplugb.Payload_PropertyValue_StringValue)
	if !ok {
		return nil
	}
	return &sv.StringValue
}

// ReasonEdgeBad is the quality reason when an edge node reports a metric's
// Quality property as bad (0); Sparkplug carries no reason text.
const ReasonEdgeBad = "bad quality reported by edge node"
