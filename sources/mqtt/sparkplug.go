package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Bounds on what edge nodes can make the host remember.
const (
	maxNodes          = 10_000
	maxMetricsPerNode = 100_000
)

// Edge node states reported in Status children.
const (
	nodeOnline  = "online"
	nodeOffline = "offline"
)

// ReasonNodeOffline is the quality reason of samples marked stale because
// the host lost its broker connection (as opposed to an NDEATH/DDEATH,
// which give model.ReasonStale).
const ReasonNodeOffline = "node offline"

// spHost is the Sparkplug B host application: birth-aware alias tables per
// edge node, seq checking, rebirth requests and stale marking. All methods
// but status are called with Source.hmu held.
type spHost struct {
	cfg    SparkplugConfig
	prefix string
	log    *slog.Logger
	all    bool // group_ids contains "+"
	groups map[string]bool

	nodes   map[string]*spNode // by group + "/" + edge node
	send    func(outMsg) bool  // nil while disconnected
	stateTS uint64

	// stMu guards stats, the part Status reads while a message is being
	// handled.
	stMu  sync.Mutex
	stats map[string]*nodeStats

	rebirthRequests, seqGaps, unknownAliases, lateDeaths atomic.Uint64
}

type spNode struct {
	group, id string
	born      bool
	bdSeq     int64 // -1: unknown
	nextSeq   int   // -1: unknown
	// lastRebirth is when the last rebirth request was sent (rate limit).
	lastRebirth time.Time
	aliases     map[uint64]*spMetric
	metrics     map[string]*spMetric // node metrics by name
	devices     map[string]*spDevice
	count       int // registered metrics, node and devices
	stats       *nodeStats
}

type spDevice struct {
	id      string
	online  bool
	metrics map[string]*spMetric
}

type spMetric struct {
	path    string
	dt      sparkplugb.DataType
	device  *spDevice // nil for a node metric
	skip    bool      // control metric or unusable name: never emitted
	current bool      // a value was emitted and not yet marked stale
	// members are a Template instance's member metrics or a DataSet's
	// columns, by name: each a tag <path>/<name>. Nil for other datatypes.
	members map[string]*spMetric
	// memberAliases: the Template members that the birth gave an alias.
	memberAliases map[uint64]*spMetric
}

type nodeStats struct {
	name                        string
	state                       string
	births, deaths, messages    uint64
	seqGaps, rebirths, devsOnln uint64
	metrics                     int
}

func newSPHost(cfg SparkplugConfig, log *slog.Logger) *spHost {
	h := &spHost{cfg: cfg, prefix: *cfg.PathPrefix, log: log, groups: map[string]bool{},
		nodes: map[string]*spNode{}, stats: map[string]*nodeStats{}}
	for _, g := range cfg.GroupIDs {
		if g == "+" {
			h.all = true
		}
		h.groups[g] = true
	}
	return h
}

// subscriptions are the Sparkplug namespace filters and the host's own
// STATE topic.
func (h *spHost) subscriptions() []mqttclient.Subscription {
	qos := byte(*h.cfg.QoS)
	var subs []mqttclient.Subscription
	if h.all {
		subs = append(subs, mqttclient.Subscription{Topic: sparkplugb.Namespace + "/#", QoS: qos})
	} else {
		for _, g := range h.cfg.GroupIDs {
			subs = append(subs, mqttclient.Subscription{Topic: sparkplugb.Namespace + "/" + g + "/#", QoS: qos})
		}
		if h.cfg.HostID != "" {
			subs = append(subs, mqttclient.Subscription{Topic: sparkplugb.Namespace + "/STATE/" + h.cfg.HostID, QoS: 1})
		}
	}
	return subs
}

// connected starts a connection: births seen before are no longer
// trusted (messages may have been missed), so every known edge node is
// asked to rebirth.
func (h *spHost) connected(stateTS uint64, send func(outMsg) bool, now time.Time) {
	h.send, h.stateTS = send, stateTS
	for _, n := range h.sortedNodes() {
		n.born = false
		n.lastRebirth = time.Time{}
		h.requestRebirth(n, now, "host reconnected")
	}
}

// disconnected marks every current metric stale (reason "node offline")
// and every node offline.
func (h *spHost) disconnected(dst []model.Sample, now int64) []model.Sample {
	h.send = nil
	for _, n := range h.sortedNodes() {
		dst = h.markStale(dst, n, nil, now, ReasonNodeOffline)
		n.born, n.nextSeq = false, -1
		for _, d := range n.devices {
			d.online = false
		}
		h.setNodeState(n, nodeOffline)
	}
	return dst
}

func (h *spHost) sortedNodes() []*spNode {
	keys := slices.Sorted(maps.Keys(h.nodes))
	out := make([]*spNode, len(keys))
	for i, k := range keys {
		out[i] = h.nodes[k]
	}
	return out
}

// handle processes one message of the Sparkplug namespace, appending the
// samples it yields to dst.
func (h *spHost) handle(dst []model.Sample, topic string, data []byte, now time.Time) ([]model.Sample, error) {
	t, err := sparkplugb.ParseTopic(topic)
	if err != nil {
		return dst, err
	}
	switch t.Type {
	case sparkplugb.STATE:
		return dst, h.handleState(t, data)
	case sparkplugb.NCMD, sparkplugb.DCMD:
		return dst, nil // commands, ours included: not data
	}
	if !h.all && !h.groups[t.Group] {
		return dst, nil
	}
	n := h.node(t.Group, t.EdgeNode)
	if n == nil {
		return dst, fmt.Errorf("more than %d edge nodes: ignoring %s/%s", maxNodes, t.Group, t.EdgeNode)
	}
	h.bumpStats(n, func(s *nodeStats) { s.messages++ })
	p, err := sparkplugb.Decode(data)
	if err != nil {
		h.requestRebirth(n, now, "malformed payload")
		return dst, err
	}
	nowNs := now.UnixNano()
	switch t.Type {
	case sparkplugb.NBIRTH:
		return h.nbirth(dst, n, p, nowNs)
	case sparkplugb.NDEATH:
		return h.ndeath(dst, n, p, nowNs), nil
	}
	if !n.born {
		h.requestRebirth(n, now, string(t.Type)+" before NBIRTH")
		return dst, nil
	}
	h.checkSeq(n, p, now)
	switch t.Type {
	case sparkplugb.DBIRTH:
		return h.dbirth(dst, n, t.Device, p, nowNs)
	case sparkplugb.DDEATH:
		if d := n.devices[t.Device]; d != nil {
			dst = h.markStale(dst, n, d, payloadTime(p, nowNs), model.ReasonStale)
			d.online = false
			h.setNodeState(n, nodeOnline)
		}
		return dst, nil
	case sparkplugb.NDATA:
		return h.data(dst, n, nil, p, now)
	case sparkplugb.DDATA:
		d := n.devices[t.Device]
		if d == nil || !d.online {
			h.requestRebirth(n, now, "DDATA before DBIRTH of device "+t.Device)
			return dst, nil
		}
		return h.data(dst, n, d, p, now)
	}
	return dst, nil
}

// handleState republishes the host's birth when it sees its own STATE
// turned offline (a late will of an earlier connection, or another
// client), as Sparkplug 3.0 asks.
func (h *spHost) handleState(t sparkplugb.Topic, data []byte) error {
	if !h.cfg.PublishState || t.HostID != h.cfg.HostID || t.Namespace == "" {
		return nil
	}
	st, err := sparkplugb.ParseState(data)
	if err != nil {
		return err
	}
	if !st.Online && st.Timestamp >= h.stateTS && h.send != nil {
		h.log.Info("own STATE seen offline, republishing online", "timestamp", st.Timestamp)
		h.send(outMsg{topic: t.String(), qos: 1, retain: true,
			payload: sparkplugb.State{Online: true, Timestamp: h.stateTS}.AppendJSON(nil)})
	}
	return nil
}

func (h *spHost) node(group, id string) *spNode {
	key := group + "/" + id
	if n := h.nodes[key]; n != nil {
		return n
	}
	if len(h.nodes) >= maxNodes {
		return nil
	}
	n := &spNode{group: group, id: id, bdSeq: -1, nextSeq: -1, devices: map[string]*spDevice{},
		stats: &nodeStats{name: key, state: nodeOffline}}
	h.nodes[key] = n
	h.stMu.Lock()
	h.stats[key] = n.stats
	h.stMu.Unlock()
	return n
}

func (h *spHost) nbirth(dst []model.Sample, n *spNode, p *sparkplugb.Payload, now int64) ([]model.Sample, error) {
	// A new session of the edge node: all aliases and device births of the
	// previous one are void, and device metrics are stale until their
	// DBIRTH arrives (Sparkplug 3.0, host application).
	for _, id := range slices.Sorted(maps.Keys(n.devices)) {
		d := n.devices[id]
		dst = h.markStale(dst, n, d, now, model.ReasonStale)
		d.online = false
		d.metrics = map[string]*spMetric{}
	}
	n.aliases, n.metrics, n.count = map[uint64]*spMetric{}, map[string]*spMetric{}, 0
	n.born, n.bdSeq = true, -1
	n.nextSeq = int((p.GetSeq() + 1) % 256)
	if m := sparkplugb.FindMetric(p, sparkplugb.MetricBdSeq); m != nil {
		if v, err := sparkplugb.ValueAs(m, sparkplugb.DataType_Int64); err == nil {
			n.bdSeq = v.AsInt() & 0xff
		}
	}
	h.bumpStats(n, func(s *nodeStats) { s.births++ })
	h.setNodeState(n, nodeOnline)
	return h.birthMetrics(dst, n, nil, p, now)
}

func (h *spHost) dbirth(dst []model.Sample, n *spNode, device string, p *sparkplugb.Payload, now int64) ([]model.Sample, error) {
	d := n.devices[device]
	if d == nil {
		if len(n.devices) >= maxMetricsPerNode {
			return dst, fmt.Errorf("edge node %s/%s: too many devices", n.group, n.id)
		}
		d = &spDevice{id: device}
		n.devices[device] = d
	}
	// Forget the device's previous birth, aliases included.
	for a, m := range n.aliases {
		if m.device == d {
			delete(n.aliases, a)
		}
	}
	for _, m := range d.metrics {
		n.count -= m.tags()
	}
	d.metrics = map[string]*spMetric{}
	d.online = true
	h.setNodeState(n, nodeOnline)
	return h.birthMetrics(dst, n, d, p, now)
}

// birthMetrics registers the metrics of an NBIRTH (d == nil) or DBIRTH and
// emits their values. Template definitions describe UDT types, not data:
// they are passed over.
func (h *spHost) birthMetrics(dst []model.Sample, n *spNode, d *spDevice, p *sparkplugb.Payload, now int64) ([]model.Sample, error) {
	w := &spWalk{n: n, birth: true, now: now}
	root := inherited{ts: payloadTime(p, now)}
	names := n.metrics
	base := h.prefix + "/" + n.group + "/" + n.id
	if h.prefix == "" {
		base = n.group + "/" + n.id
	}
	if d != nil {
		names = d.metrics
		base += "/" + d.id
	}
	for _, m := range p.GetMetrics() {
		name := m.GetName()
		switch {
		case name == "":
			w.fail(errors.New("birth metric without a name"))
			continue
		case sparkplugb.IsTemplateDefinition(m):
			continue
		}
		if n.count >= maxMetricsPerNode {
			w.fail(fmt.Errorf("edge node %s/%s: more than %d metrics", n.group, n.id, maxMetricsPerNode))
			break
		}
		if old := names[name]; old != nil {
			n.count -= old.tags()
		}
		skip := !h.cfg.IncludeControlMetrics && isControlMetric(name)
		meta := h.register(w, d, base+"/"+name, m, skip)
		names[name] = meta
		if m.Alias != nil {
			n.aliases[m.GetAlias()] = meta
		}
		dst = h.appendMetric(dst, w, meta, m, root)
	}
	h.setMetricCount(n)
	return dst, errors.Join(w.errs...)
}

func isControlMetric(name string) bool {
	return name == sparkplugb.MetricBdSeq || strings.HasPrefix(name, "Node Control/") ||
		strings.HasPrefix(name, "Device Control/")
}

// data resolves the metrics of an NDATA (d == nil) or DDATA by alias, or
// by name when a publisher sends names, and emits them.
func (h *spHost) data(dst []model.Sample, n *spNode, d *spDevice, p *sparkplugb.Payload, now time.Time) ([]model.Sample, error) {
	w := &spWalk{n: n, now: now.UnixNano()}
	root := inherited{ts: payloadTime(p, w.now)}
	count := n.count
	names := n.metrics
	if d != nil {
		names = d.metrics
	}
	for _, m := range p.GetMetrics() {
		var meta *spMetric
		if m.Alias != nil {
			meta = n.aliases[m.GetAlias()]
		} else {
			meta = names[m.GetName()]
		}
		if meta == nil || meta.device != d {
			h.unknownAliases.Add(1)
			w.unknown = true
			continue
		}
		dst = h.appendMetric(dst, w, meta, m, root)
	}
	if w.unknown {
		h.requestRebirth(n, now, "unknown alias, metric name or template member")
	}
	if n.count != count { // new DataSet columns
		h.setMetricCount(n)
	}
	return dst, errors.Join(w.errs...)
}

// ndeath handles an edge node's death: ignored unless its bdSeq matches
// the NBIRTH's (a late will of an older session); else every metric of
// the node and its devices is marked stale.
func (h *spHost) ndeath(dst []model.Sample, n *spNode, p *sparkplugb.Payload, now int64) []model.Sample {
	if m := sparkplugb.FindMetric(p, sparkplugb.MetricBdSeq); m != nil && n.bdSeq >= 0 {
		if v, err := sparkplugb.ValueAs(m, sparkplugb.DataType_Int64); err == nil && v.AsInt()&0xff != n.bdSeq {
			h.lateDeaths.Add(1)
			return dst
		}
	}
	dst = h.markStale(dst, n, nil, payloadTime(p, now), model.ReasonStale)
	n.born, n.nextSeq = false, -1
	for _, d := range n.devices {
		d.online = false
	}
	h.bumpStats(n, func(s *nodeStats) { s.deaths++ })
	h.setNodeState(n, nodeOffline)
	return dst
}

// markStale emits a bad sample for every current metric of device d, or
// of the node and all its devices when d is nil.
func (h *spHost) markStale(dst []model.Sample, n *spNode, d *spDevice, ts int64, reason string) []model.Sample {
	mark := func(ms map[string]*spMetric) {
		for _, k := range slices.Sorted(maps.Keys(ms)) {
			ms[k].leaves(func(meta *spMetric) {
				if meta.skip || !meta.current {
					return
				}
				meta.current = false
				dst = append(dst, model.Sample{Path: meta.path, Quality: model.Quality{Code: model.Bad, Reason: reason},
					SourceTime: ts, EdgeTime: ts})
			})
		}
	}
	if d != nil {
		mark(d.metrics)
		return dst
	}
	mark(n.metrics)
	for _, id := range slices.Sorted(maps.Keys(n.devices)) {
		mark(n.devices[id].metrics)
	}
	return dst
}

// checkSeq verifies that seq follows the previous message of the edge node
// (node and device messages share one counter, mod 256). A gap asks for a
// rebirth; the sequence then resynchronises on the message received.
func (h *spHost) checkSeq(n *spNode, p *sparkplugb.Payload, now time.Time) {
	if p.Seq == nil {
		return
	}
	seq := int(p.GetSeq() % 256)
	if n.nextSeq >= 0 && seq != n.nextSeq {
		h.seqGaps.Add(1)
		h.bumpStats(n, func(s *nodeStats) { s.seqGaps++ })
		h.requestRebirth(n, now, fmt.Sprintf("seq gap: expected %d, got %d", n.nextSeq, seq))
	}
	n.nextSeq = (seq + 1) % 256
}

// requestRebirth sends NCMD Node Control/Rebirth = true, at most once per
// rebirth_interval per edge node.
func (h *spHost) requestRebirth(n *spNode, now time.Time, why string) {
	if h.send == nil || (!n.lastRebirth.IsZero() && now.Sub(n.lastRebirth) < h.cfg.RebirthInterval) {
		return
	}
	ms := uint64(now.UnixMilli())
	m := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricRebirth), Timestamp: proto.Uint64(ms),
		Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean))}
	_ = sparkplugb.SetValue(m, model.Bool(true), sparkplugb.DataType_Boolean)
	payload, err := sparkplugb.Encode(&sparkplugb.Payload{Timestamp: proto.Uint64(ms), Metrics: []*sparkplugb.Metric{m}})
	if err != nil {
		return
	}
	topic := sparkplugb.Topic{Namespace: sparkplugb.Namespace, Group: n.group, Type: sparkplugb.NCMD, EdgeNode: n.id}.String()
	if !h.send(outMsg{topic: topic, payload: payload}) {
		return
	}
	n.lastRebirth = now
	h.rebirthRequests.Add(1)
	h.bumpStats(n, func(s *nodeStats) { s.rebirths++ })
	h.log.Info("requesting rebirth", "group", n.group, "edge_node", n.id, "why", why)
}

func payloadTime(p *sparkplugb.Payload, now int64) int64 {
	if p.Timestamp == nil {
		return now
	}
	return msToNs(p.GetTimestamp(), now)
}

// msToNs converts a Sparkplug timestamp; one beyond int64 ns (year 2262)
// is garbage and replaced by the arrival time.
func msToNs(ms uint64, now int64) int64 {
	if ms > uint64(1<<63-1)/1e6 {
		return now
	}
	return int64(ms) * 1e6
}

func (h *spHost) bumpStats(n *spNode, f func(*nodeStats)) {
	h.stMu.Lock()
	f(n.stats)
	h.stMu.Unlock()
}

func (h *spHost) setNodeState(n *spNode, state string) {
	online := uint64(0)
	for _, d := range n.devices {
		if d.online {
			online++
		}
	}
	h.bumpStats(n, func(s *nodeStats) { s.state, s.devsOnln = state, online })
}

func (h *spHost) setMetricCount(n *spNode) {
	h.bumpStats(n, func(s *nodeStats) { s.metrics = n.count })
}

// status adds the Sparkplug counters and one child per edge node.
func (h *spHost) status(st *pipeline.Status) {
	st.Counters["rebirth_requests"] = h.rebirthRequests.Load()
	st.Counters["seq_gaps"] = h.seqGaps.Load()
	st.Counters["unknown_aliases"] = h.unknownAliases.Load()
	st.Counters["late_deaths"] = h.lateDeaths.Load()
	h.stMu.Lock()
	defer h.stMu.Unlock()
	online := 0
	for _, s := range h.stats {
		if s.state == nodeOnline {
			online++
		}
		st.Children = append(st.Children, pipeline.Status{
			Name:  s.name,
			State: s.state,
			Counters: map[string]uint64{"messages": s.messages, "births": s.births, "deaths": s.deaths,
				"seq_gaps": s.seqGaps, "rebirth_requests": s.rebirths},
			Gauges: map[string]float64{"metrics": float64(s.metrics), "devices_online": float64(s.devsOnln)},
		})
	}
	slices.SortFunc(st.Children, func(a, b pipeline.Status) int { return strings.Compare(a.Name, b.Name) })
	st.Gauges["edge_nodes_online"] = float64(online)
}
