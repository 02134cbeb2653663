package api

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/secevents"
)

// collector turns engine status snapshots into Prometheus metrics at scrape
// time, so components keep plain atomic counters and know nothing of
// Prometheus. Metric names: weir_<kind>_<key>[_total] with a "name" label;
// children such as the devices of a source get weir_<kind>_child_<key> with
// "name" and "child" labels (one family must keep one label set). HELP
// comes from the catalogue in help.go.
type collector struct {
	src  StatusSource
	info *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(src StatusSource, node, version string) *collector {
	return &collector{
		src: src,
		info: prometheus.NewDesc("weir_build_info", help["weir_build_info"], nil,
			prometheus.Labels{"version": version, "node": node}),
	}
}

// Describe is empty: the metric set depends on the configured components,
// which makes this an "unchecked" collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

var invalidMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func metricName(parts ...string) string {
	return invalidMetricChars.ReplaceAllString(strings.Join(parts, "_"), "_")
}

// states are the lifecycle states weir_component_state always lists.
var states = []string{pipeline.StateStarting, pipeline.StateConnecting, pipeline.StateRunning,
	pipeline.StateRetrying, pipeline.StateStopping, pipeline.StateStopped, pipeline.StateFailed}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1)
	counter(ch, "weir_pipeline_samples_emitted_total", nil, float64(st.Emitted))
	counter(ch, "weir_pipeline_samples_filtered_total", nil, float64(st.Filtered))
	for _, cs := range st.Components {
		componentHealth(ch, cs)
		labels := prometheus.Labels{"name": cs.Name}
		var sums map[string]bool // keys whose children's series are exported instead
		if cs.ChildSums {
			sums = childKeys(cs.Children)
		}
		emitStatus(ch, cs.Kind, labels, cs.Status, sums)
		if b := cs.Buffer; b != nil {
			gauge(ch, metricName("weir", cs.Kind, "buffer_depth_samples"), labels, float64(b.Depth))
			gauge(ch, metricName("weir", cs.Kind, "buffer_capacity_samples"), labels, float64(b.Capacity))
			gauge(ch, metricName("weir", cs.Kind, "buffer_depth_bytes"), labels, float64(b.Bytes))
			gauge(ch, metricName("weir", cs.Kind, "buffer_capacity_bytes"), labels, float64(b.MaxBytes))
			gauge(ch, metricName("weir", cs.Kind, "buffer_backlog_samples"), labels, float64(b.Backlog))
			age := 0.0
			if b.OldestEdgeTime > 0 {
				age = time.Since(time.Unix(0, b.OldestEdgeTime)).Seconds()
			}
			gauge(ch, metricName("weir", cs.Kind, "buffer_oldest_age_seconds"), labels, age)
			// One family by cause; the causes sum to Stats.Dropped, which is
			// therefore not exported again. Acked is not exported either:
			// it is samples_written plus samples_rejected.
			for _, d := range []struct {
				cause string
				n     uint64
			}{{"full", b.DroppedFull}, {"age", b.DroppedAge}, {"disk_full", b.DroppedDiskFull}, {"corrupt", b.DroppedCorrupt}} {
				counter(ch, metricName("weir", cs.Kind, "buffer_dropped_samples_total"),
					prometheus.Labels{"name": cs.Name, "cause": d.cause}, float64(d.n))
			}
			counter(ch, metricName("weir", cs.Kind, "buffer_redelivered_samples_total"), labels, float64(b.Redelivered))
		}
		if dl := cs.DeadLetters; dl != nil {
			deadLetters(ch, cs.Kind, cs.Name, dl)
		}
		if l := cs.Latency; l != nil {
			histogram(ch, metricName("weir", cs.Kind, "latency_seconds"), labels, l.Buckets)
		}
		if l := cs.GatewayLatency; l != nil {
			histogram(ch, metricName("weir", cs.Kind, "gateway_latency_seconds"), labels, l.Buckets)
		}
		for _, child := range cs.Children {
			childLabels := prometheus.Labels{"name": cs.Name, "child": child.Name}
			emitStatus(ch, cs.Kind+"_child", childLabels, child, nil)
		}
	}
}

// deadLetters exports a sink's refused samples by cause and its
// dead-letter store. Every cause is exported (0 until it happens), so
// that an alert on the rate needs no absent() guard.
func deadLetters(ch chan<- prometheus.Metric, kind, name string, dl *engine.DeadLetterStatus) {
	labels := prometheus.Labels{"name": name}
	for cause, n := range dl.Rejected {
		counter(ch, metricName("weir", kind, "refused_samples_total"), prometheus.Labels{"name": name, "cause": cause}, float64(n))
	}
	counter(ch, metricName("weir", kind, "dead_letter_lost_samples_total"), labels, float64(dl.Lost))
	if dl.Held == nil {
		return // no store: a memory buffer's sink
	}
	for cause, n := range dl.Held {
		gauge(ch, metricName("weir", kind, "dead_letter_samples"), prometheus.Labels{"name": name, "cause": cause}, float64(n))
	}
	gauge(ch, metricName("weir", kind, "dead_letter_bytes"), labels, float64(dl.Bytes))
	counter(ch, metricName("weir", kind, "dead_letter_dropped_samples_total"), labels, float64(dl.Dropped))
}

// componentHealth exports whether the component is up, its state, when it
// last failed and whether each of its parts runs. The error message is
// not a label (every new message would start a new series); it is in
// /status and in the log.
func componentHealth(ch chan<- prometheus.Metric, cs engine.ComponentStatus) {
	kl := prometheus.Labels{"kind": cs.Kind, "name": cs.Name}
	gauge(ch, "weir_component_up", kl, boolValue(cs.Up))
	known := false
	for _, s := range states {
		known = known || s == cs.State
		gauge(ch, "weir_component_state", prometheus.Labels{"kind": cs.Kind, "name": cs.Name, "state": s},
			boolValue(s == cs.State))
	}
	if !known && cs.State != "" {
		gauge(ch, "weir_component_state", prometheus.Labels{"kind": cs.Kind, "name": cs.Name, "state": cs.State}, 1)
	}
	if !cs.LastErrorAt.IsZero() {
		gauge(ch, "weir_component_last_error_timestamp_seconds", kl, float64(cs.LastErrorAt.UnixNano())/1e9)
	}
	for _, child := range cs.Children {
		if child.State == "" {
			continue
		}
		gauge(ch, "weir_component_child_up", prometheus.Labels{"kind": cs.Kind, "name": cs.Name, "child": child.Name},
			boolValue(!pipeline.IsDown(child.State)))
	}
}

func childKeys(children []pipeline.Status) map[string]bool {
	keys := map[string]bool{}
	for _, c := range children {
		for k := range c.Counters {
			keys[k] = true
		}
		for k := range c.Gauges {
			keys[k] = true
		}
	}
	return keys
}

func emitStatus(ch chan<- prometheus.Metric, kind string, labels prometheus.Labels, s pipeline.Status, skip map[string]bool) {
	for k, v := range s.Counters {
		if name := metricName("weir", kind, k, "total"); !skip[k] && duplicates[name] == "" {
			counter(ch, name, labels, float64(v))
		}
	}
	for k, v := range s.Gauges {
		if name := metricName("weir", kind, k); !skip[k] && duplicates[name] == "" {
			gauge(ch, name, labels, v)
		}
	}
}

// describe returns the catalogue's HELP for name, or a line that says the
// metric is undocumented (never the bare name).
func describe(name string) string {
	if h, ok := help[name]; ok {
		return h
	}
	return fmt.Sprintf("Undocumented: reported by a component but not described in Weir's metric catalogue (api/help.go); see the component's README for %s.", name)
}

func counter(ch chan<- prometheus.Metric, name string, labels prometheus.Labels, v float64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, describe(name), nil, labels), prometheus.CounterValue, v)
}

func gauge(ch chan<- prometheus.Metric, name string, labels prometheus.Labels, v float64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, describe(name), nil, labels), prometheus.GaugeValue, v)
}

// bucketBounds are latency.BucketBounds in seconds.
var bucketBounds = func() []float64 {
	out := make([]float64, len(latency.BucketBounds))
	for i, b := range latency.BucketBounds {
		out[i] = b.Seconds()
	}
	return out
}()

func histogram(ch chan<- prometheus.Metric, name string, labels prometheus.Labels, b latency.Buckets) {
	buckets := make(map[float64]uint64, len(bucketBounds))
	for i, le := range bucketBounds {
		buckets[le] = b.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(prometheus.NewDesc(name, describe(name), nil, labels),
		b.Count, b.Sum.Seconds(), buckets)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SecurityEventSource is what the security event stream reports for
// metrics; *secevents.Stream implements it.
type SecurityEventSource interface {
	Stats() secevents.Stats
}

// securityCollector exports the security event stream's counters at
// scrape time: events by kind, what was dropped where, and the syslog
// sender's health.
type securityCollector struct{ src SecurityEventSource }

func (securityCollector) Describe(chan<- *prometheus.Desc) {}

func (c securityCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for kind, n := range st.Events {
		counter(ch, "weir_security_events_total", prometheus.Labels{"kind": kind}, float64(n))
	}
	counter(ch, "weir_security_events_filtered_total", nil, float64(st.Filtered))
	if st.SinksOn {
		counter(ch, "weir_security_events_dropped_total", prometheus.Labels{"target": "sinks"}, float64(st.DroppedSinks))
	}
	if s := st.Syslog; s != nil {
		counter(ch, "weir_security_events_dropped_total", prometheus.Labels{"target": "syslog"}, float64(s.Dropped))
		counter(ch, "weir_security_syslog_messages_sent_total", nil, float64(s.Sent))
		counter(ch, "weir_security_syslog_failures_total", nil, float64(s.Failed))
		gauge(ch, "weir_security_syslog_queued_events", nil, float64(s.Queued))
		gauge(ch, "weir_security_syslog_connected", nil, boolValue(s.Connected))
	}
}
