package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// OPC UA mode (Options.Source "opcua"): the peer is the simulator's OPC UA
// server with Items Double variables (ns=1;s=bench.NNNNN) that all change
// every ChangeInterval, each stamped as its source timestamp with the time
// the simulator hands the change to the server library's subscription queue. The change interval defaults to the sampling interval
// plus 1/32 of it: real changes fall anywhere in the publishing cycle, but a
// simulator ticking at exactly the publishing interval would hold one
// arbitrary phase for the whole run (and the figure would be that phase);
// 1/32 slower sweeps the changes across the cycle every 32 changes, and
// never makes two changes of an item share one publish (the library's
// server keeps only the newest change per item and publish). The gateway subscribes to all of them on one session
// (security None, anonymous: the figure is about the pipeline, not the
// crypto) in one subscription with PublishingInterval, and the samples run
// through the engine to the MQTT sink as in Modbus mode.
//
// The latency recorded per sample is still source timestamp → PUBACK. The
// server holds a change until its next publishing tick, so up to one
// publishing interval of that is inherent to OPC UA subscriptions; the
// figure "beyond the publishing interval" is the end-to-end quantile minus
// the publishing interval. The receipt delay (source timestamp → the
// gateway decoded the publish response) is recorded separately, so the
// part the server and its publish cycle account for can be told apart
// from the gateway's own.

// Limits of the OPC UA mode.
const (
	maxOPCUAItems = 100_000
	// opcuaReadyTimeout bounds the wait for every monitored item to be
	// created before the warm-up starts.
	opcuaReadyTimeout = 2 * time.Minute
	// itemsPerAsset groups the items into assets (tag path prefixes), so
	// that the sink's batch mode sends one message per 100 items, as the
	// Modbus mode sends one per device.
	itemsPerAsset = 100
)

// OPCUAResult is what the OPC UA mode measures beyond the common figures.
type OPCUAResult struct {
	Items              int     `json:"items"`
	PublishingInterval string  `json:"publishing_interval"`
	SamplingInterval   string  `json:"sampling_interval"`
	ChangeInterval     string  `json:"change_interval"`
	Security           string  `json:"security"`
	RevisedPublishing  string  `json:"revised_publishing_interval"`
	ChangesPerSec      float64 `json:"server_changes_per_sec"`
	NotificationsPerS  float64 `json:"notifications_per_sec"`
	// Beyond*: end-to-end latency minus the publishing interval.
	BeyondP50ms float64 `json:"latency_beyond_publishing_p50_ms"`
	BeyondP99ms float64 `json:"latency_beyond_publishing_p99_ms"`
	BeyondMaxms float64 `json:"latency_beyond_publishing_max_ms"`
	// Receipt*: source timestamp → publish response decoded by the
	// gateway (the server's publish cycle and the wire).
	ReceiptP50ms float64 `json:"receipt_delay_p50_ms"`
	ReceiptP99ms float64 `json:"receipt_delay_p99_ms"`
	ReceiptMaxms float64 `json:"receipt_delay_max_ms"`
	// Gateway*: publish response decoded → PUBACK, per sample: Weir's own
	// share of the latency.
	GatewayP50ms float64 `json:"gateway_p50_ms"`
	GatewayP99ms float64 `json:"gateway_p99_ms"`
	GatewayMaxms float64 `json:"gateway_max_ms"`
	// SessionFailures counts sessions that failed during the run; any
	// makes the figures suspect.
	SessionFailures uint64 `json:"session_failures"`
}

// setOPCUADefaults fills the OPC UA options and derives the offered rate.
func (o *Options) setOPCUADefaults() error {
	if o.Items <= 0 {
		o.Items = 1000
	}
	if o.Items > maxOPCUAItems {
		return fmt.Errorf("bench: items %d: at most %d", o.Items, maxOPCUAItems)
	}
	if o.PublishingInterval <= 0 {
		o.PublishingInterval = 100 * time.Millisecond
	}
	if o.SamplingInterval <= 0 {
		o.SamplingInterval = o.PublishingInterval
	}
	o.ChangeInterval = o.OPCUAChangeInterval()
	if o.PublishingInterval < 10*time.Millisecond || o.SamplingInterval < 10*time.Millisecond || o.ChangeInterval < 10*time.Millisecond {
		return fmt.Errorf("bench: publishing interval %s, sampling interval %s, change interval %s: want at least 10ms",
			o.PublishingInterval, o.SamplingInterval, o.ChangeInterval)
	}
	o.Rate = float64(o.Items) / o.ChangeInterval.Seconds()
	return nil
}

// OPCUAChangeInterval is how often the OPC UA server changes every value:
// ChangeInterval, else the sampling interval (else the publishing interval,
// else 100ms) plus 1/32 of it.
func (o *Options) OPCUAChangeInterval() time.Duration {
	if o.ChangeInterval > 0 {
		return o.ChangeInterval
	}
	s := o.SamplingInterval
	if s <= 0 {
		s = o.PublishingInterval
	}
	if s <= 0 {
		s = 100 * time.Millisecond
	}
	return s + s/32
}

// opcuaConfigYAML renders the gateway configuration of the OPC UA mode.
func opcuaConfigYAML(o Options, endpoint, broker string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `node: {id: weir-bench}
data_dir: %q
sources:
  - name: bench
    opcua:
      endpoint: %q
      security_policy: None
      security_mode: None
      namespace: bench/opcua
      batch_size: 1000
      subscriptions:
        - publishing_interval: %s
          items:
`, o.DataDir, endpoint, o.PublishingInterval)
	for i := range o.Items {
		fmt.Fprintf(&b, "            - {name: g%03d/i%05d, node_id: \"%s;s=bench.%05d\", sampling_interval: %s}\n",
			i/itemsPerAsset, i, cmp.Or(o.OPCUANamespace, "ns=1"), i, o.SamplingInterval)
	}
	b.WriteString(sinkYAML(o, broker))
	return b.String()
}

// receiptTap wraps the bench source so that every sample's receipt delay
// (EdgeTime − SourceTime, both set by the OPC UA source) is recorded before
// the engine sees it. It passes the source's status through.
type receiptTap struct {
	inner pipeline.Source
	hist  *latency.Histogram
}

var (
	_ pipeline.Source         = (*receiptTap)(nil)
	_ pipeline.StatusReporter = (*receiptTap)(nil)
)

func (t *receiptTap) Run(ctx context.Context, out pipeline.Emitter) error {
	return t.inner.Run(ctx, tapEmitter{out: out, hist: t.hist})
}

func (t *receiptTap) Status() pipeline.Status {
	if r, ok := t.inner.(pipeline.StatusReporter); ok {
		return r.Status()
	}
	return pipeline.Status{}
}

type tapEmitter struct {
	out  pipeline.Emitter
	hist *latency.Histogram
}

func (e tapEmitter) Emit(ctx context.Context, batch []model.Sample) error {
	for i := range batch {
		e.hist.Record(time.Duration(batch[i].EdgeTime - batch[i].SourceTime))
	}
	return e.out.Emit(ctx, batch)
}

// opcuaStatus is the OPC UA source's state: monitored items created so far
// (over all sessions), notifications received, failed sessions, and the
// publishing interval the server granted.
type opcuaStatus struct {
	itemsCreated, notifications, sessionFailures uint64
	revised                                      time.Duration
}

func opcuaSnapshot(eng *engine.Engine) opcuaStatus {
	var s opcuaStatus
	for _, cs := range eng.Status().Components {
		if cs.Kind != "source" {
			continue
		}
		s.itemsCreated += cs.Counters["items_created"]
		s.notifications += cs.Counters["notifications"]
		s.sessionFailures += cs.Counters["session_failures"]
		for _, child := range cs.Children {
			if v, ok := child.Gauges["revised_publishing_interval_seconds"]; ok {
				s.revised = time.Duration(v * float64(time.Second))
			}
		}
	}
	return s
}

var errNotReady = errors.New("bench: the OPC UA source did not create every monitored item in time")

// waitOPCUAReady blocks until the source has created all items monitored
// items, so that the warm-up starts with the subscription in place.
func waitOPCUAReady(ctx context.Context, eng *engine.Engine, items int) error {
	deadline := time.NewTimer(opcuaReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for opcuaSnapshot(eng).itemsCreated < uint64(items) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errNotReady
		case <-tick.C:
		}
	}
	return nil
}

// opcuaResult assembles the OPC UA figures of a measured window.
// e2e and gw are the end-to-end and gateway p50, p99 and max, each read
// once for the whole result.
func opcuaResult(o Options, rx *latency.Histogram, before, after opcuaStatus, window time.Duration, e2e, gw [3]time.Duration) *OPCUAResult {
	p50, p99, pmax := e2e[0], e2e[1], e2e[2]
	p := o.PublishingInterval
	g50, g99, gmax := gw[0], gw[1], gw[2]
	return &OPCUAResult{
		GatewayP50ms:       ms(g50),
		GatewayP99ms:       ms(g99),
		GatewayMaxms:       ms(gmax),
		Items:              o.Items,
		PublishingInterval: p.String(),
		SamplingInterval:   o.SamplingInterval.String(),
		ChangeInterval:     o.ChangeInterval.String(),
		Security:           "None (anonymous)",
		RevisedPublishing:  after.revised.String(),
		ChangesPerSec:      o.Rate,
		NotificationsPerS:  float64(after.notifications-before.notifications) / window.Seconds(),
		BeyondP50ms:        ms(p50 - p),
		BeyondP99ms:        ms(p99 - p),
		BeyondMaxms:        ms(pmax - p),
		ReceiptP50ms:       ms(rx.Quantile(0.50)),
		ReceiptP99ms:       ms(rx.Quantile(0.99)),
		ReceiptMaxms:       ms(rx.Max()),
		SessionFailures:    after.sessionFailures,
	}
}

// OPCUAPeers are the OPC UA mode's load generators: the simulator's OPC UA
// server and, optionally, an embedded broker.
type OPCUAPeers struct {
	Peers
	srv    *simopcua.Server
	broker *broker.Broker
}

// StartOPCUAPeers serves items bench variables, each changing every change
// interval, over OPC UA (security None) on loopback and, when withBroker,
// an embedded MQTT broker.
func StartOPCUAPeers(ctx context.Context, items int, change time.Duration, withBroker bool, log *slog.Logger) (*OPCUAPeers, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := Options{Items: items, ChangeInterval: change}
	if err := o.setOPCUADefaults(); err != nil {
		return nil, err
	}
	plant := sim.NewPlant(sim.PlantOptions{Seed: 1})
	srv, err := simopcua.Serve(ctx, "127.0.0.1:0", plant, simopcua.Options{
		Security: []string{"None"}, BenchNodes: o.Items, Refresh: o.ChangeInterval,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("bench: OPC UA server: %w", err)
	}
	p := &OPCUAPeers{srv: srv}
	p.OPCUA = srv.Endpoint()
	if withBroker {
		b, err := broker.Start("127.0.0.1:0", log)
		if err != nil {
			return nil, errors.Join(err, srv.Close())
		}
		p.broker = b
		p.Broker = b.Addr()
	}
	return p, nil
}

// Dropped is how many notifications the server dropped because the
// subscription did not take them in time.
func (p *OPCUAPeers) Dropped() uint64 { return p.srv.Stats().Dropped }

// Close stops the server and the broker.
func (p *OPCUAPeers) Close() error {
	err := p.srv.Close()
	if p.broker != nil {
		err = errors.Join(err, p.broker.Close())
	}
	return err
}
