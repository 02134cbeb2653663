package simopcua

import (
	"context"
	"errors"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/sim"
)

// run refreshes the values every Refresh (stepping the plant first when
// Options.Step is set) until ctx ends.
func (s *Server) run(ctx context.Context) {
	defer close(s.runExited)
	t := time.NewTicker(s.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.opts.Step > 0 {
				s.plant.Step(s.opts.Step)
			}
			s.publish(ctx)
		}
	}
}

// change is a variable's new value, found by refresh and made visible
// (stamped and installed) by notify.
type change struct {
	v   *variable
	val any
}

// publish compares the values with the model and hands the changes to
// the subscriptions. The refresh loop and Write both call it; one at a
// time, so changes become visible in the order they were found.
func (s *Server) publish(ctx context.Context) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.notify(ctx, s.refresh())
}

// refresh lists the variables whose value differs from the model's. It
// changes nothing a client can see: notify stamps and installs each new
// value. Only publish calls it (v.last is publish's own state).
func (s *Server) refresh() []change {
	values := s.plant.Values()
	var changed []change
	for _, v := range s.space.order {
		var nv any
		switch {
		case v.name != "":
			nv = convert(values[v.name], v.typ)
		case v.next != nil:
			nv = v.next(v.last)
		default:
			continue
		}
		if nv == v.last {
			continue
		}
		v.last = nv
		changed = append(changed, change{v, nv})
	}
	return changed
}

// notify stamps each change, installs it as the variable's value and
// hands it to every monitored item on it. It replaces the library's
// ChangeNotification, which blocks for good on a subscription whose
// goroutine has ended (a client that went away) while holding the
// monitored-item lock; here the whole refresh waits at most notifyBudget,
// after which notifications that cannot be queued are dropped and counted.
//
// A change is stamped when it is handed to the library's subscription
// queue, the earliest moment the server can report it (any wait for room
// in the queue still counts): feeding 10,000 changes through the
// library's 100-slot channel takes ~10 ms, and stamped at the start of
// the refresh the last of them would carry that as latency no client
// could remove. It is installed at the same moment, under the
// monitored-item lock, so every reader sees one timestamp per change:
// the library's initial-value read for a new monitored item (a goroutine
// that takes that lock and reads the current value, at any moment) sees
// the value before or after the change, never the change with an
// earlier stamp than the one its subscription gets next. Installed
// earlier, a loaded machine delivered one value twice, stamps 0.27 s
// apart (TestOneChangeOneTimestamp). A Read during the refresh sees the
// variables not yet reached with their previous value.
func (s *Server) notify(ctx context.Context, changed []change) {
	if len(changed) == 0 {
		return
	}
	mis := s.srv.MonitoredItemService
	if mis != nil {
		mis.Mu.Lock()
		defer mis.Mu.Unlock()
	}
	budget := time.NewTimer(notifyBudget)
	defer budget.Stop()
	expired, stopped := false, false
	for _, c := range changed {
		dv := valueDV(c.val, ua.StatusOK, time.Now())
		s.space.mu.Lock()
		c.v.dv = dv
		s.space.mu.Unlock()
		if mis == nil || stopped {
			continue // every change is still installed, so Reads stay current
		}
		for _, it := range mis.Nodes[c.v.node.ID().String()] {
			if it == nil || it.Sub == nil || it.Req == nil || it.Req.ItemToMonitor == nil ||
				it.Req.ItemToMonitor.AttributeID != ua.AttributeIDValue || it.Req.RequestedParameters == nil {
				continue
			}
			n := &ua.MonitoredItemNotification{ClientHandle: it.Req.RequestedParameters.ClientHandle, Value: dv}
			select { // fast path: room in the queue
			case it.Sub.NotifyChannel <- n:
				s.published.Add(1)
				continue
			default:
			}
			if expired {
				s.dropped.Add(1)
				continue
			}
			select {
			case it.Sub.NotifyChannel <- n:
				s.published.Add(1)
			case <-budget.C:
				expired = true
				s.dropped.Add(1)
			case <-ctx.Done():
				stopped = true
			}
			if stopped {
				break
			}
		}
	}
}

// write applies a client's Write of a plant setpoint. The variant must
// have the variable's type, as OPC UA servers require.
func (s *Server) write(v *variable, val *ua.Variant) ua.StatusCode {
	if val.Type() != v.typ || val.ArrayLength() > 0 {
		return ua.StatusBadTypeMismatch
	}
	if err := s.plant.WriteValue(v.name, val.Value()); err != nil {
		switch {
		case errors.Is(err, sim.ErrOutOfRange):
			return ua.StatusBadOutOfRange
		case errors.Is(err, sim.ErrTypeMismatch):
			return ua.StatusBadTypeMismatch
		case errors.Is(err, sim.ErrNotWritable):
			return ua.StatusBadNotWritable
		}
		return ua.StatusBadNodeIDUnknown
	}
	s.log.Info("setpoint written", "tag", v.name, "value", val.Value())
	s.publish(context.Background())
	return ua.StatusOK
}
