package simopcua

import (
	"context"
	"errors"
	"time"

	"github.com/gopcua/opcua/ua"

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
		case now := <-t.C:
			if s.opts.Step > 0 {
				s.plant.Step(s.opts.Step)
			}
			s.notify(ctx, s.refresh(now))
		}
	}
}

// refresh compares every variable with the model and gives the changed
// ones a new DataValue stamped now; notify stamps it again when it hands
// the change to the subscriptions, so a Read in between (a few ms at
// 10,000 changes) may see the earlier stamp. Unchanged values keep theirs:
// a client reading twice without a change sees the same source timestamp.
func (s *Server) refresh(now time.Time) []*variable {
	values := s.plant.Values()
	var changed []*variable
	s.space.mu.Lock()
	defer s.space.mu.Unlock()
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
		v.last, v.dv = nv, valueDV(nv, ua.StatusOK, now)
		changed = append(changed, v)
	}
	return changed
}

// notify hands the changed values to every monitored item on them. It
// replaces the library's ChangeNotification, which blocks for good on a
// subscription whose goroutine has ended (a client that went away) while
// holding the monitored-item lock; here the whole refresh waits at most
// notifyBudget, after which notifications that cannot be queued are
// dropped and counted.
func (s *Server) notify(ctx context.Context, changed []*variable) {
	if len(changed) == 0 {
		return
	}
	mis := s.srv.MonitoredItemService
	if mis == nil {
		return
	}
	budget := time.NewTimer(notifyBudget)
	defer budget.Stop()
	expired := false
	mis.Mu.Lock()
	defer mis.Mu.Unlock()
	for _, v := range changed {
		// Stamp the change just before it is handed to the library's
		// subscription queue, the earliest moment the server can report
		// it (any wait for room in the queue still counts). Feeding
		// 10,000 changes through the library's 100-slot channel takes
		// ~10 ms; stamped at the start of the refresh, the last of them
		// would carry that as latency no client could remove.
		s.space.mu.Lock()
		dv := restamp(v.dv, time.Now())
		v.dv = dv
		s.space.mu.Unlock()
		for _, it := range mis.Nodes[v.node.ID().String()] {
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
				return
			}
		}
	}
}

// restamp is a copy of dv with its source and server timestamps set to at.
func restamp(dv *ua.DataValue, at time.Time) *ua.DataValue {
	c := *dv
	c.SourceTimestamp, c.ServerTimestamp = at, at
	c.EncodingMask |= ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp
	return &c
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
	s.notify(context.Background(), s.refresh(time.Now()))
	return ua.StatusOK
}
