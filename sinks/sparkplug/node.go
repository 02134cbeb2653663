package sparkplug

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// Metric property keys Weir adds besides the Quality convention.
const (
	// PropSeq carries model.Sample.Seq (UInt64) in NDATA/DDATA.
	PropSeq = "weir_seq"
	// PropReason carries model.Quality.Reason (String) when not good.
	PropReason = "weir_reason"
)

// metricState is one metric of the edge node: a tag seen so far.
type metricState struct {
	name  string
	alias uint64
	dt    sparkplugb.DataType
	// guessed: the datatype was chosen before any valid value was seen;
	// the first valid value may change it (and cause a DBIRTH).
	guessed bool
	dev     *deviceState
	// born: announced in a birth of this process (datatype fixed until a
	// value of another kind arrives).
	born bool
	last model.Sample // last published value (Path unused)
	has  bool
	// reported: last went out in a DATA (or is about to, in the message
	// being built) since the metric's latest birth, in report epoch
	// reportEpoch. Report by exception compares with it; a birth or a
	// failed Write (node.reportEpoch moves on) makes the next value go
	// out whatever it is.
	reported    bool
	reportEpoch uint64
}

// unchanged reports whether s carries the value and quality last reported
// for m since its birth, so report by exception can leave it out.
func (m *metricState) unchanged(s *model.Sample, epoch uint64) bool {
	return m.reported && m.reportEpoch == epoch && m.has &&
		m.last.Quality == s.Quality && m.last.Value.Equal(s.Value)
}

// deviceState is a Sparkplug device, or the node itself (id "").
type deviceState struct {
	id                                string
	birthTopic, dataTopic, deathTopic string
	metrics                           []*metricState
	// born: DBIRTH published in the current session; dead: DDEATH
	// published since; needBirth: a (re)birth is due before more data.
	born, dead, needBirth bool
	// batch holds the indices of this Write's samples for the device.
	batch []int
}

// allBad reports whether every metric's last quality is bad.
func (d *deviceState) allBad() bool {
	if len(d.metrics) == 0 {
		return false
	}
	for _, m := range d.metrics {
		if !m.has || m.last.Quality.Code != model.Bad {
			return false
		}
	}
	return true
}

// node is the edge node's metric registry: devices, metrics, aliases. It
// is owned by the Sink and guarded by Sink.pubMu.
type node struct {
	dev       DeviceConfig
	group     string
	edge      string
	byPath    map[string]*metricState
	byID      map[string]*deviceState
	devices   []*deviceState // creation order; births follow it
	self      *deviceState   // node-level metrics (NBIRTH / NDATA)
	nextAlias uint64
	// nodeRebirth: a new node-level metric needs a new NBIRTH.
	nodeRebirth bool
	// reportEpoch invalidates every metric's reported flag at once (a
	// Write failed: what it reported may not have reached the host).
	reportEpoch uint64
}

func newNode(cfg *Config) *node {
	n := &node{
		dev: cfg.Device, group: cfg.GroupID, edge: cfg.EdgeNodeID,
		byPath: map[string]*metricState{}, byID: map[string]*deviceState{},
		nextAlias: 1,
	}
	n.self = &deviceState{
		birthTopic: n.topic(sparkplugb.NBIRTH, ""),
		dataTopic:  n.topic(sparkplugb.NDATA, ""),
		deathTopic: n.topic(sparkplugb.NDEATH, ""),
	}
	return n
}

func (n *node) topic(t sparkplugb.MessageType, device string) string {
	return sparkplugb.Topic{Namespace: sparkplugb.Namespace, Group: n.group, Type: t, EdgeNode: n.edge, Device: device}.String()
}

// split maps a tag path to (device id, metric name); device "" is the
// node. See DeviceConfig.
func (n *node) split(path string) (device, name string) {
	p := path
	if n.dev.StripPrefix != "" {
		if rest, ok := strings.CutPrefix(p, n.dev.StripPrefix+"/"); ok {
			p = rest
		}
	}
	levels := strings.Count(p, "/") + 1
	devLevels := n.dev.Levels
	if devLevels == 0 {
		devLevels = levels - 1
	}
	if devLevels <= 0 || levels <= devLevels {
		return "", p
	}
	cut := 0
	for range devLevels {
		cut += strings.IndexByte(p[cut:], '/') + 1
	}
	key, name := p[:cut-1], p[cut:]
	if id, ok := n.dev.Map[key]; ok {
		return id, name
	}
	return strings.ReplaceAll(key, "/", n.dev.Separator), name
}

// resolve returns the metric for path, registering it (and its device)
// on first sight. created reports a new metric.
func (n *node) resolve(path string) (m *metricState, created bool, err error) {
	if m := n.byPath[path]; m != nil {
		return m, false, nil
	}
	devID, name := n.split(path)
	if name == "" {
		return nil, false, fmt.Errorf("tag %q: empty metric name", path)
	}
	if !utf8.ValidString(name) {
		// Sparkplug strings are UTF-8; a host would refuse or mangle it.
		return nil, false, fmt.Errorf("tag %q: metric name is not valid UTF-8", path)
	}
	d := n.self
	if devID != "" {
		if err := sparkplugb.ValidateID(devID); err != nil {
			return nil, false, fmt.Errorf("tag %q: device id: %w", path, err)
		}
		d = n.byID[devID]
		if d == nil {
			d = &deviceState{
				id:         devID,
				birthTopic: n.topic(sparkplugb.DBIRTH, devID),
				dataTopic:  n.topic(sparkplugb.DDATA, devID),
				deathTopic: n.topic(sparkplugb.DDEATH, devID),
			}
			n.byID[devID] = d
			n.devices = append(n.devices, d)
		}
	}
	for _, o := range d.metrics {
		if o.name == name { // two paths mapped onto one metric (strip_prefix)
			n.byPath[path] = o
			return o, false, nil
		}
	}
	m = &metricState{name: name, alias: n.nextAlias, dev: d, dt: sparkplugb.DataType_Double, guessed: true}
	n.nextAlias++
	d.metrics = append(d.metrics, m)
	n.byPath[path] = m
	if d == n.self {
		n.nodeRebirth = true
	} else {
		d.needBirth = true
	}
	return m, true, nil
}

// observe updates m's datatype from a valid value and reports whether that
// changed the datatype (which needs a new birth).
func (m *metricState) observe(v model.Value) bool {
	if !v.IsValid() {
		return false
	}
	dt := sparkplugb.DataTypeOf(v)
	if dt == sparkplugb.DataType_Unknown {
		dt = sparkplugb.DataType_String // empty array: keep a type hosts know; value is sent as null
	}
	if dt == m.dt {
		m.guessed = false
		return false
	}
	m.dt, m.guessed = dt, false
	return true
}

// birthMetric builds m's BIRTH entry: name, alias, datatype, timestamp and
// its last value (or is_null).
func (m *metricState) birthMetric(nowMs uint64) *sparkplugb.Metric {
	m.born, m.reported = true, false
	bm := &sparkplugb.Metric{
		Name:     proto.String(m.name),
		Alias:    proto.Uint64(m.alias),
		Datatype: proto.Uint32(uint32(m.dt)),
	}
	ts := nowMs
	if m.has && m.last.SourceTime > 0 {
		ts = uint64(m.last.SourceTime / 1e6)
	}
	bm.Timestamp = proto.Uint64(ts)
	var v model.Value
	if m.has {
		v = m.last.Value
		if !m.last.Quality.IsGood() {
			sparkplugb.AddProperty(bm, sparkplugb.QualityProperty, sparkplugb.Int32Property(sparkplugb.QualityCode(m.last.Quality.Code)))
		}
	}
	if err := sparkplugb.SetValue(bm, v, m.dt); err != nil {
		_ = sparkplugb.SetValue(bm, model.Value{}, m.dt) // stale value of an older type
	}
	return bm
}

// nodeBirth builds the NBIRTH payload.
func (n *node) nodeBirth(nowMs uint64, bdSeq uint64) *sparkplugb.Payload {
	p := sparkplugb.NewPayload(nowMs, 0)
	p.Metrics = append(p.Metrics,
		&sparkplugb.Metric{
			Name: proto.String(sparkplugb.MetricBdSeq), Timestamp: proto.Uint64(nowMs),
			Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64)),
			Value:    &sparkplugb.Payload_Metric_LongValue{LongValue: bdSeq},
		},
		&sparkplugb.Metric{
			Name: proto.String(sparkplugb.MetricRebirth), Timestamp: proto.Uint64(nowMs),
			Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean)),
			Value:    &sparkplugb.Payload_Metric_BooleanValue{BooleanValue: false},
		})
	for _, m := range n.self.metrics {
		p.Metrics = append(p.Metrics, m.birthMetric(nowMs))
	}
	return p
}

// deviceBirth builds a DBIRTH payload (seq filled in by the caller).
func (d *deviceState) deviceBirth(nowMs uint64) *sparkplugb.Payload {
	p := sparkplugb.NewPayload(nowMs, 0)
	p.Metrics = make([]*sparkplugb.Metric, 0, len(d.metrics))
	for _, m := range d.metrics {
		p.Metrics = append(p.Metrics, m.birthMetric(nowMs))
	}
	return p
}

// deathPayload is the NDEATH payload: bdSeq only, no seq.
func deathPayload(nowMs, bdSeq uint64) []byte {
	p := &sparkplugb.Payload{Timestamp: proto.Uint64(nowMs), Metrics: []*sparkplugb.Metric{{
		Name: proto.String(sparkplugb.MetricBdSeq), Timestamp: proto.Uint64(nowMs),
		Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64)),
		Value:    &sparkplugb.Payload_Metric_LongValue{LongValue: bdSeq},
	}}}
	b, _ := sparkplugb.Encode(p) // cannot fail for this message
	return b
}

// dataEncoder builds NDATA/DDATA metrics from samples, alias only.
type dataEncoder struct {
	seqProp bool
	// conversions counts samples whose value could not be stored in the
	// metric's datatype (sent as null with Quality bad).
	conversions uint64
}

func (e *dataEncoder) metric(m *metricState, s *model.Sample) *sparkplugb.Metric {
	dm := &sparkplugb.Metric{Alias: proto.Uint64(m.alias), Timestamp: proto.Uint64(uint64(s.SourceTime / 1e6))}
	if s.Historical {
		dm.IsHistorical = proto.Bool(true)
	}
	q := s.Quality
	if err := sparkplugb.SetValue(dm, s.Value, m.dt); err != nil {
		e.conversions++
		_ = sparkplugb.SetValue(dm, model.Value{}, m.dt)
		q = model.Quality{Code: model.Bad, Reason: "value not representable as " + m.dt.String()}
	}
	if !q.IsGood() {
		sparkplugb.AddProperty(dm, sparkplugb.QualityProperty, sparkplugb.Int32Property(sparkplugb.QualityCode(q.Code)))
		if q.Reason != "" {
			sparkplugb.AddProperty(dm, PropReason, sparkplugb.StringProperty(q.Reason))
		}
	}
	if e.seqProp {
		sparkplugb.AddProperty(dm, PropSeq, sparkplugb.UInt64Property(s.Seq))
	}
	return dm
}
