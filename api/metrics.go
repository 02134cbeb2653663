package api

import (
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/pipeline"
)

// collector turns engine status snapshots into Prometheus metrics at scrape
// time, so components keep plain atomic counters and know nothing of
// Prometheus. Metric names: weir_<kind>_<key>[_total] with a "name" label;
// children such as the devices of a source get weir_<kind>_child_<key> with
// "name" and "child" labels (one family must keep one label set).
type collector struct {
	src     StatusSource
	info    *prometheus.Desc
	emitted *prometheus.Desc
	up      *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(src StatusSource, node, version string) *collector {
	return &collector{
		src: src,
		info: prometheus.NewDesc("weir_build_info", "Weir version and node id.", nil,
			prometheus.Labels{"version": version, "node": node}),
		emitted: prometheus.NewDesc("weir_pipeline_samples_emitted_total", "Samples emitted by all sources.", nil, nil),
		up: prometheus.NewDesc("weir_component_up", "1 when the component is running, else 0.",
			[]string{"kind", "name"}, nil),
	}
}

// Describe is empty: the metric set depends on the configured components,
// which makes this an "unchecked" collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

var invalidMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func metricName(parts ...string) string {
	return invalidMetricChars.ReplaceAllString(strings.Join(parts, "_"), "_")
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.emitted, prometheus.CounterValue, float64(st.Emitted))
	for _, cs := range st.Components {
		up := 0.0
		if cs.State == pipeline.StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, cs.Kind, cs.Name)
		labels := prometheus.Labels{"name": cs.Name}
		emitStatus(ch, cs.Kind, labels, cs.Status)
		if b := cs.Buffer; b != nil {
			gauge(ch, metricName("weir", cs.Kind, "buffer_depth_samples"), labels, float64(b.Depth))
			gauge(ch, metricName("weir", cs.Kind, "buffer_capacity_samples"), labels, float64(b.Capacity))
			counter(ch, metricName("weir", cs.Kind, "buffer_dropped_samples_total"), labels, float64(b.Dropped))
			for cause, n := range map[string]uint64{"full": b.DroppedFull, "age": b.DroppedAge,
				"disk_full": b.DroppedDiskFull, "corrupt": b.DroppedCorrupt} {
				counter(ch, metricName("weir", cs.Kind, "buffer_dropped_by_cause_samples_total"),
					prometheus.Labels{"name": cs.Name, "cause": cause}, float64(n))
			}
			counter(ch, metricName("weir", cs.Kind, "buffer_acked_samples_total"), labels, float64(b.Acked))
			gauge(ch, metricName("weir", cs.Kind, "buffer_depth_bytes"), labels, float64(b.Bytes))
			gauge(ch, metricName("weir", cs.Kind, "buffer_backlog_samples"), labels, float64(b.Backlog))
			age := 0.0
			if b.OldestEdgeTime > 0 {
				age = time.Since(time.Unix(0, b.OldestEdgeTime)).Seconds()
			}
			gauge(ch, metricName("weir", cs.Kind, "buffer_oldest_age_seconds"), labels, age)
			counter(ch, metricName("weir", cs.Kind, "buffer_redelivered_samples_total"), labels, float64(b.Redelivered))
		}
		if l := cs.Latency; l != nil {
			gauge(ch, metricName("weir", cs.Kind, "latency_p50_seconds"), labels, l.P50ms/1000)
			gauge(ch, metricName("weir", cs.Kind, "latency_p99_seconds"), labels, l.P99ms/1000)
		}
		for _, child := range cs.Children {
			childLabels := prometheus.Labels{"name": cs.Name, "child": child.Name}
			emitStatus(ch, cs.Kind+"_child", childLabels, child)
		}
	}
}

func emitStatus(ch chan<- prometheus.Metric, kind string, labels prometheus.Labels, s pipeline.Status) {
	for k, v := range s.Counters {
		counter(ch, metricName("weir", kind, k, "total"), labels, float64(v))
	}
	for k, v := range s.Gauges {
		gauge(ch, metricName("weir", kind, k), labels, v)
	}
}

func counter(ch chan<- prometheus.Metric, name string, labels prometheus.Labels, v float64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, name, nil, labels), prometheus.CounterValue, v)
}

func gauge(ch chan<- prometheus.Metric, name string, labels prometheus.Labels, v float64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, name, nil, labels), prometheus.GaugeValue, v)
}
