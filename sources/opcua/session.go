package opcua

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

var errConnLost = errors.New("connection to the server lost")

// Reason of a node whose namespace URI the server does not know, in the
// spelling of the library's status names.
const reasonNamespaceUnknown = "BadNodeIDUnknown: namespace URI not in the server's NamespaceArray"

// session runs one session from connect to failure or ctx's end. It always
// returns an error (ctx's own when it ended) after closing the client and
// waiting for every goroutine it started.
func (s *Source) session(ctx context.Context, out pipeline.Emitter) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}

	// The client reports connection state on stateCh and blocks while it
	// is full, so a watcher drains it until the client is closed.
	stateCh := make(chan opcua.ConnState, 16)
	stateDone := make(chan struct{})
	var watchers sync.WaitGroup
	watchers.Go(func() {
		for {
			select {
			case st := <-stateCh:
				if st == opcua.Disconnected || st == opcua.Closed {
					fail(errConnLost)
				}
			case <-stateDone:
				return
			}
		}
	})
	defer func() { close(stateDone); watchers.Wait() }()

	c, err := s.connect(sctx, stateCh)
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), min(s.cfg.RequestTimeout, 2*time.Second))
		defer ccancel()
		c.Close(cctx)
	}()
	s.ctr.sessions.Add(1)
	s.live.Store(c)
	defer s.live.Store(nil) // before the client is closed: defers are LIFO

	s.resolveNodes(sctx, c.Namespaces(), out)
	s.readEURanges(sctx, c)

	var lastRx atomic.Int64
	lastRx.Store(time.Now().UnixNano())
	notifyCh := make(chan *opcua.PublishNotificationData, 64)
	var wg sync.WaitGroup
	defer wg.Wait() // runs before the client is closed: defers are LIFO
	defer cancel()
	wg.Go(func() {
		if err := s.consume(sctx, notifyCh, out, &lastRx); err != nil {
			fail(err)
		}
	})
	for i := range s.subs {
		if err := s.subscribe(sctx, c, i, notifyCh, out); err != nil {
			fail(err)
			break
		}
	}
	if sctx.Err() == nil {
		s.setState(pipeline.StateRunning, "")
		s.log.Info("session running", "subscriptions", len(s.subs), "poll_groups", len(s.polls))
		for i := range s.polls {
			wg.Go(func() {
				if err := s.poll(sctx, c, i, out, &lastRx); err != nil {
					fail(err)
				}
			})
		}
		wg.Go(func() {
			if err := s.watchdog(sctx, c, &lastRx); err != nil {
				fail(err)
			}
		})
	}
	<-sctx.Done()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

// resolveNodes parses every item's node id against this session's
// namespace table. Items that cannot be resolved are reported and skipped.
func (s *Source) resolveNodes(ctx context.Context, ns []string, out pipeline.Emitter) {
	for i, it := range s.items {
		it.node, it.hasEU, it.dbActive = nil, false, false
		e, err := ua.ParseExpandedNodeID(it.nodeSpec, ns)
		if err != nil {
			s.reportFailed(ctx, out, i, reasonNamespaceUnknown)
			continue
		}
		it.node = e.NodeID
	}
}

// reportFailed records an item the server refused and emits one sample
// with bad quality naming the reason, so consumers see the tag exists but
// is not delivered.
func (s *Source) reportFailed(ctx context.Context, out pipeline.Emitter, i int, reason string) {
	s.setFailed(i, reason)
	s.log.Warn("item not delivered", "tag", s.items[i].path, "node_id", s.items[i].nodeSpec, "reason", reason)
	now := time.Now().UnixNano()
	smp := []model.Sample{{Path: s.items[i].path, Quality: model.Quality{Code: model.Bad, Reason: reason}, SourceTime: now, EdgeTime: now}}
	if err := out.Emit(ctx, smp); err == nil {
		s.ctr.samples.Add(1)
	}
}

// maxNotifications is the MaxNotificationsPerPublish to request for a
// configured value; -1 (no limit) asks for the largest, since the protocol's
// own "no limit", 0, is replaced by the library with its default of 10,000.
func maxNotifications(n int) uint32 {
	if n < 0 {
		return math.MaxUint32
	}
	return uint32(n)
}

// subscribe creates subscription i and its monitored items in batches.
// An item the server refuses is reported and skipped; a refused deadband
// filter is retried without it (the client-side deadband still applies).
func (s *Source) subscribe(ctx context.Context, c *opcua.Client, i int, notifyCh chan *opcua.PublishNotificationData, out pipeline.Emitter) error {
	pi := s.cfg.Subscriptions[i].PublishingInterval
	keep := uint32(max(1, (s.cfg.WatchdogInterval+pi-1)/pi))
	sc := s.cfg.Subscriptions[i]
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: pi, MaxKeepAliveCount: keep, LifetimeCount: 4 * keep,
		MaxNotificationsPerPublish: maxNotifications(sc.MaxNotificationsPerPublish), Priority: sc.Priority}, notifyCh)
	if err != nil {
		return fmt.Errorf("subscription[%d]: create: %w", i, err)
	}
	s.mu.Lock()
	s.revised[i] = sub.RevisedPublishingInterval
	s.mu.Unlock()

	var todo []int
	for _, idx := range s.subs[i] {
		if s.items[idx].node != nil {
			todo = append(todo, idx)
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), s.cfg.BatchSize)
		retry, err := s.monitor(ctx, sub, todo[:n], true, out)
		if err != nil {
			return fmt.Errorf("subscription[%d]: %w", i, err)
		}
		if len(retry) > 0 {
			if _, err := s.monitor(ctx, sub, retry, false, out); err != nil {
				return fmt.Errorf("subscription[%d]: %w", i, err)
			}
		}
		todo = todo[n:]
	}
	return nil
}

// monitor sends one CreateMonitoredItems request. It returns the items
// whose deadband filter the server refused, to be retried without one.
func (s *Source) monitor(ctx context.Context, sub *opcua.Subscription, idx []int, withFilter bool, out pipeline.Emitter) ([]int, error) {
	reqs := make([]*ua.MonitoredItemCreateRequest, len(idx))
	for k, i := range idx {
		it := s.items[i]
		r := opcua.NewMonitoredItemCreateRequestWithDefaults(it.node, ua.AttributeIDValue, uint32(i))
		r.RequestedParameters.SamplingInterval = float64(it.sampling) / float64(time.Millisecond)
		r.RequestedParameters.QueueSize = it.queue
		r.RequestedParameters.DiscardOldest = it.discard
		if withFilter && it.deadband != nil && it.deadband.Value > 0 {
			typ := uint32(ua.DeadbandTypeAbsolute)
			if it.deadband.Type == "percent" {
				typ = uint32(ua.DeadbandTypePercent)
			}
			r.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
				Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: typ, DeadbandValue: it.deadband.Value})
		}
		reqs[k] = r
	}
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs...)
	if err != nil {
		return nil, fmt.Errorf("create monitored items: %w", err)
	}
	if sr := res.ResponseHeader.ServiceResult; sr != ua.StatusOK {
		return nil, fmt.Errorf("create monitored items: %w", sr)
	}
	if len(res.Results) != len(idx) {
		return nil, fmt.Errorf("create monitored items: %d results for %d items", len(res.Results), len(idx))
	}
	var retry []int
	for k, r := range res.Results {
		i := idx[k]
		switch {
		case r.StatusCode == ua.StatusOK || r.StatusCode>>30 == 0:
			s.setFailed(i, "")
			s.ctr.itemsCreated.Add(1)
		case reqs[k].RequestedParameters.Filter != nil && isFilterError(r.StatusCode):
			s.log.Info("server refused the deadband filter; filtering in the client", "tag", s.items[i].path, "status", statusName(r.StatusCode))
			retry = append(retry, i)
		default:
			s.reportFailed(ctx, out, i, statusName(r.StatusCode))
		}
	}
	return retry, nil
}

func isFilterError(c ua.StatusCode) bool {
	switch c {
	case ua.StatusBadFilterNotAllowed, ua.StatusBadMonitoredItemFilterUnsupported,
		ua.StatusBadMonitoredItemFilterInvalid, ua.StatusBadDeadbandFilterInvalid:
		return true
	}
	return false
}

// consume turns notifications into batches, one per DataChangeNotification,
// until ctx ends or the subscription reports an error.
func (s *Source) consume(ctx context.Context, ch <-chan *opcua.PublishNotificationData, out pipeline.Emitter, lastRx *atomic.Int64) error {
	var batch []model.Sample
	var order orderScratch
	for {
		var n *opcua.PublishNotificationData
		select {
		case <-ctx.Done():
			return nil
		case n = <-ch:
		}
		now := time.Now().UnixNano()
		lastRx.Store(now)
		if n.Error != nil {
			return fmt.Errorf("subscription %d: %w", n.SubscriptionID, n.Error)
		}
		switch v := n.Value.(type) {
		case *ua.DataChangeNotification:
			batch = batch[:0]
			s.ctr.dataChanges.Add(1)
			s.ctr.notifications.Add(uint64(len(v.MonitoredItems)))
			inConfigOrder(v.MonitoredItems, len(s.items), &order)
			for _, m := range v.MonitoredItems {
				if m == nil || int(m.ClientHandle) >= len(s.items) || s.items[m.ClientHandle].sub < 0 {
					continue
				}
				if smp, ok := s.sample(s.items[m.ClientHandle], m.Value, now, true); ok {
					batch = append(batch, smp)
				}
				if len(batch) == emitChunk {
					// A large notification goes out in pieces, so the sinks
					// publish the first while the rest is converted.
					if err := out.Emit(ctx, batch); err != nil {
						return nil // ctx ended
					}
					s.ctr.samples.Add(uint64(len(batch)))
					batch = batch[:0]
				}
			}
			if len(batch) == 0 {
				continue
			}
			if err := out.Emit(ctx, batch); err != nil {
				return nil // ctx ended
			}
			s.ctr.samples.Add(uint64(len(batch)))
		case *ua.StatusChangeNotification:
			// The server gave up the subscription (Bad_Timeout, shutdown):
			// rebuild the session rather than run with items missing.
			return fmt.Errorf("subscription %d: status changed to %s", n.SubscriptionID, statusName(v.Status))
		}
	}
}

// inConfigOrder puts a notification's items in client handle order, which
// is their index in the configuration: servers send them in any order (a
// hash map's, often), and in configuration order the items of one asset
// sit together, so a sink batching by asset sends a message per asset
// instead of one per handful of samples. Stable: an item reported twice
// (queue size > 1) keeps its values in order. handles is the number of
// items configured; o holds scratch space reused between calls.
//
// A counting sort when the notification is large against the item count
// (a comparison sort of 10,000 items cost 4 ms per notification), a
// comparison sort otherwise; already sorted costs one pass.
func inConfigOrder(items []*ua.MonitoredItemNotification, handles int, o *orderScratch) {
	key := func(m *ua.MonitoredItemNotification) int {
		if m == nil || int(m.ClientHandle) >= handles {
			return handles // out of range and nil last, in arrival order
		}
		return int(m.ClientHandle)
	}
	sorted := true
	for i := 1; i < len(items) && sorted; i++ {
		sorted = key(items[i-1]) <= key(items[i])
	}
	if sorted {
		return
	}
	if len(items) < handles/8 {
		slices.SortStableFunc(items, func(a, b *ua.MonitoredItemNotification) int { return cmp.Compare(key(a), key(b)) })
		return
	}
	o.start = slices.Grow(o.start[:0], handles+2)[:handles+2]
	clear(o.start)
	for _, m := range items {
		o.start[key(m)+1]++
	}
	for k := 1; k < len(o.start); k++ {
		o.start[k] += o.start[k-1]
	}
	o.out = slices.Grow(o.out[:0], len(items))[:len(items)]
	for _, m := range items {
		k := key(m)
		o.out[o.start[k]] = m
		o.start[k]++
	}
	copy(items, o.out)
	clear(o.out) // no references kept past the notification
}

// emitChunk is the most samples of one notification emitted at once.
const emitChunk = 1000

// orderScratch is inConfigOrder's reusable space.
type orderScratch struct {
	start []int32
	out   []*ua.MonitoredItemNotification
}

// poll reads group i at its interval until ctx ends or a read fails.
// Polled values are emitted on every read, as a Modbus poll is.
func (s *Source) poll(ctx context.Context, c *opcua.Client, i int, out pipeline.Emitter, lastRx *atomic.Int64) error {
	var idx []int
	for _, j := range s.polls[i] {
		if s.items[j].node != nil {
			idx = append(idx, j)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	t := time.NewTicker(s.cfg.Poll[i].Interval)
	defer t.Stop()
	batch := make([]model.Sample, 0, len(idx))
	nodes := make([]*ua.ReadValueID, 0, min(len(idx), s.cfg.BatchSize))
	for {
		batch = batch[:0]
		for start := 0; start < len(idx); start += s.cfg.BatchSize {
			chunk := idx[start:min(len(idx), start+s.cfg.BatchSize)]
			nodes = nodes[:0]
			for _, j := range chunk {
				nodes = append(nodes, &ua.ReadValueID{NodeID: s.items[j].node, AttributeID: ua.AttributeIDValue})
			}
			res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: nodes, TimestampsToReturn: ua.TimestampsToReturnBoth})
			s.ctr.reads.Add(1)
			if err == nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
				err = res.ResponseHeader.ServiceResult
			}
			if err == nil && len(res.Results) != len(chunk) {
				err = fmt.Errorf("%d results for %d nodes", len(res.Results), len(chunk))
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.ctr.readErrors.Add(1)
				return fmt.Errorf("poll[%d]: read: %w", i, err)
			}
			now := time.Now().UnixNano()
			lastRx.Store(now)
			for k, dv := range res.Results {
				if smp, ok := s.sample(s.items[chunk[k]], dv, now, false); ok {
					batch = append(batch, smp)
				}
			}
		}
		if len(batch) > 0 {
			if err := out.Emit(ctx, batch); err != nil {
				return nil
			}
			s.ctr.samples.Add(uint64(len(batch)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchdog reads the server's clock whenever nothing arrived for a
// watchdog interval. gopcua does not surface keep-alives, so this read is
// what notices a half-open connection.
func (s *Source) watchdog(ctx context.Context, c *opcua.Client, lastRx *atomic.Int64) error {
	iv := s.cfg.WatchdogInterval
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue}}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if time.Since(time.Unix(0, lastRx.Load())) < iv {
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, min(s.cfg.RequestTimeout, iv))
		_, err := c.Read(rctx, req)
		rcancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("watchdog: server does not answer: %w", err)
		}
		lastRx.Store(time.Now().UnixNano())
	}
}
