package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// reconnectPolicy spaces reconnect attempts to a failed device. A device
// that accepts connections but never answers costs (retries+1)×timeout per
// attempt on top of this.
var reconnectPolicy = backoff.Policy{Initial: 200 * time.Millisecond, Max: 30 * time.Second}

// overrunWarnEvery rate-limits the overrun warning per device.
const overrunWarnEvery = time.Minute

// group is a compiled GroupConfig with its request plan and a batch buffer
// reused every cycle (Emit copies what it keeps).
type group struct {
	interval time.Duration
	tags     []tagDef
	reqs     []request
	batch    []model.Sample
	exc      string // first exception of the last poll, "" if none
}

// device polls one Modbus TCP server. A single goroutine (run) owns the
// connection and schedules all of the device's groups: Modbus TCP devices
// answer one request at a time per connection anyway, so a goroutine per
// group would only queue on the connection. Devices never share anything,
// so one that is slow or dead delays only its own groups.
type device struct {
	name    string
	log     *slog.Logger
	client  *mb.ModbusClient
	retries int
	groups  []*group
	down    []model.Sample // one bad sample per tag of the device
	perCyc  int            // planned requests per full cycle (all groups)
	// phase is where in each group's interval this device polls, as a
	// fraction: its first poll after connecting waits phase × interval.
	phase float64

	requests, requestErrors, exceptions, samples, overruns, reconnects atomic.Uint64
	lastCycle                                                          atomic.Int64 // ns

	mu      sync.Mutex
	state   string
	lastErr string

	// Owned by the run goroutine.
	lastOverrunWarn time.Time
	unwarnedOverrun uint64

	// Writes (write.go): wmu keeps one write's requests together;
	// writeMultiple selects FC 15/16 for single coils and registers.
	wmu           sync.Mutex
	writeMultiple bool
}

func newDevice(c DeviceConfig, log *slog.Logger) (*device, error) {
	client, err := mb.NewClient(&mb.ClientConfiguration{
		URL:     "tcp://" + c.Address,
		Timeout: c.Timeout,
		// The library logs to stdout unless given a logger; its messages
		// (unexpected transaction ids and the like) are debugging detail.
		Logger: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	})
	if err != nil {
		return nil, fmt.Errorf("modbus client for %s: %w", c.Address, err)
	}
	if err := client.SetUnitId(uint8(*c.UnitID)); err != nil {
		return nil, fmt.Errorf("unit id: %w", err)
	}
	d := &device{name: c.Name, log: log, client: client, retries: *c.Retries, state: pipeline.StateStopped, writeMultiple: c.WriteMultiple}
	lim := limits{maxRegs: c.MaxRegs, maxBits: c.MaxBits, maxGap: *c.MaxGap}
	for gi := range c.Groups {
		gc := &c.Groups[gi]
		g := &group{interval: gc.Interval}
		for ti := range gc.Tags {
			t := compileTag(c.Namespace, &gc.Tags[ti])
			g.tags = append(g.tags, t)
			g.batch = append(g.batch, model.Sample{Path: t.path})
			d.down = append(d.down, model.Sample{Path: t.path})
		}
		g.reqs = planRequests(g.tags, lim)
		d.perCyc += len(g.reqs)
		d.groups = append(d.groups, g)
	}
	return d, nil
}

// setState changes the state and keeps the last error.
func (d *device) setState(state string) {
	d.mu.Lock()
	d.state = state
	d.mu.Unlock()
}

// setError changes the state and the last error ("" when healthy).
func (d *device) setError(state, lastErr string) {
	d.mu.Lock()
	d.state, d.lastErr = state, lastErr
	d.mu.Unlock()
}

func (d *device) status() pipeline.Status {
	d.mu.Lock()
	state, lastErr := d.state, d.lastErr
	d.mu.Unlock()
	return pipeline.Status{
		Name:      d.name,
		State:     state,
		LastError: lastErr,
		Counters: map[string]uint64{
			"requests":       d.requests.Load(),
			"request_errors": d.requestErrors.Load(),
			"exceptions":     d.exceptions.Load(),
			"samples":        d.samples.Load(),
			"poll_overruns":  d.overruns.Load(),
			"reconnects":     d.reconnects.Load(),
		},
		Gauges: map[string]float64{
			"requests_per_cycle": float64(d.perCyc),
			"last_cycle_seconds": time.Duration(d.lastCycle.Load()).Seconds(),
		},
	}
}

// run connects, polls every group on its schedule and reconnects with
// backoff after a failure, until ctx is done.
func (d *device) run(ctx context.Context, out pipeline.Emitter) {
	d.setState(pipeline.StateConnecting)
	defer d.setState(pipeline.StateStopped)
	var (
		bo        = backoff.Backoff{Policy: reconnectPolicy}
		timer     = time.NewTimer(time.Hour)
		next      = make([]time.Time, len(d.groups))
		connected bool
		isDown    bool // a bad batch was emitted and no poll succeeded since
		everUp    bool
	)
	timer.Stop()
	defer timer.Stop()
	defer func() {
		if connected {
			_ = d.client.Close()
		}
	}()
	for ctx.Err() == nil {
		if !connected {
			if everUp || isDown {
				d.reconnects.Add(1)
			}
			if err := d.client.Open(); err != nil {
				d.fail(ctx, out, &isDown, fmt.Errorf("device %s: connect: %w", d.name, err))
				wait(ctx, timer, bo.Next())
				continue
			}
			connected = true
			// Connected is enough for writes: a rule reacting to this
			// connection's first poll must not find the device "connecting".
			d.setState(pipeline.StateRunning)
			now := time.Now()
			for i, g := range d.groups {
				next[i] = now.Add(time.Duration(d.phase * float64(g.interval)))
			}
		}
		gi := 0
		for i := range next {
			if next[i].Before(next[gi]) {
				gi = i
			}
		}
		if !wait(ctx, timer, time.Until(next[gi])) {
			return
		}
		start := time.Now()
		err := d.poll(ctx, out, d.groups[gi])
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			_ = d.client.Close()
			connected = false
			d.fail(ctx, out, &isDown, err)
			wait(ctx, timer, bo.Next())
			continue
		}
		end := time.Now()
		d.lastCycle.Store(int64(end.Sub(start)))
		if isDown || !everUp {
			d.log.Info("modbus device up")
		}
		bo.Reset()
		isDown, everUp = false, true
		// A device answering with exceptions is up but not healthy: its
		// last error stays an exception from the groups' latest polls.
		lastErr := ""
		for _, g := range d.groups {
			if g.exc != "" {
				lastErr = g.exc
				break
			}
		}
		d.setError(pipeline.StateRunning, lastErr)
		d.schedule(next, gi, end)
	}
}

// wait blocks for dur or until ctx is done; it reports whether dur elapsed.
func wait(ctx context.Context, timer *time.Timer, dur time.Duration) bool {
	if dur <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(dur)
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-timer.C:
		return true
	}
}

// schedule sets group gi's next poll one interval after the one just done.
// When that moment has already passed, the cycle overran: the missed ticks
// are skipped (no burst of catch-up polls) and counted as one overrun.
func (d *device) schedule(next []time.Time, gi int, now time.Time) {
	iv := d.groups[gi].interval
	n := next[gi].Add(iv)
	if n.Before(now) {
		n = n.Add((now.Sub(n)/iv + 1) * iv)
		d.overruns.Add(1)
		d.unwarnedOverrun++
		if now.Sub(d.lastOverrunWarn) >= overrunWarnEvery {
			d.log.Warn("modbus poll overran its interval; skipping missed ticks",
				"interval", iv, "last_cycle", time.Duration(d.lastCycle.Load()), "overruns_since_last_warning", d.unwarnedOverrun)
			d.lastOverrunWarn, d.unwarnedOverrun = now, 0
		}
	}
	next[gi] = n
}

// fail records a connection-level failure and, the first time the device
// goes down, emits one batch marking all its tags bad.
func (d *device) fail(ctx context.Context, out pipeline.Emitter, isDown *bool, err error) {
	d.setError(pipeline.StateRetrying, err.Error())
	if *isDown {
		d.log.Debug("modbus device still down", "err", err)
		return
	}
	*isDown = true
	reason := model.ReasonUnreachable
	if isTimeout(err) {
		reason = model.ReasonTimeout
	}
	d.log.Warn("modbus device down", "err", err, "reason", reason)
	now := time.Now().UnixNano()
	for i := range d.down {
		s := &d.down[i]
		s.Value = model.Value{}
		s.Quality = model.Quality{Code: model.Bad, Reason: reason}
		s.SourceTime, s.EdgeTime = now, now
	}
	d.samples.Add(uint64(len(d.down)))
	if err := out.Emit(ctx, d.down); err != nil && ctx.Err() == nil {
		d.log.Warn("modbus emit failed", "err", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, mb.ErrRequestTimedOut) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// poll runs one cycle of group g and emits its batch. It returns an error
// only when the device itself failed (timeout, broken connection, garbled
// frame); Modbus exceptions mark the affected tags bad and the cycle goes on.
func (d *device) poll(ctx context.Context, out pipeline.Emitter, g *group) error {
	exc := ""
	for ri := range g.reqs {
		r := &g.reqs[ri]
		regs, bits, err := d.read(ctx, r)
		now := time.Now().UnixNano()
		if err != nil {
			name, isExc := exceptionName(err)
			if !isExc {
				return fmt.Errorf("device %s: read %s %d+%d: %w", d.name, r.table, r.start, r.count, err)
			}
			d.exceptions.Add(1)
			if exc == "" {
				exc = fmt.Sprintf("device %s: read %s %d+%d: exception: %s", d.name, r.table, r.start, r.count, name)
			}
			for _, it := range r.items {
				s := &g.batch[it.tag]
				s.Value, s.Quality = model.Value{}, model.Quality{Code: model.Bad, Reason: name}
				s.SourceTime, s.EdgeTime = now, now
			}
			continue
		}
		g.decode(r, regs, bits, now)
	}
	g.exc = exc
	d.samples.Add(uint64(len(g.batch)))
	if err := out.Emit(ctx, g.batch); err != nil && ctx.Err() == nil {
		d.log.Warn("modbus emit failed", "err", err)
	}
	return nil
}

// decode fills the batch slots of r's tags from a response that arrived at
// now (Unix ns). It is the hot path: no allocation except for strings.
func (g *group) decode(r *request, regs []uint16, bits []bool, now int64) {
	for _, it := range r.items {
		t, s := &g.tags[it.tag], &g.batch[it.tag]
		var v model.Value
		ok := false
		switch {
		case r.table.isBits() && int(it.off) < len(bits):
			v, ok = t.decodeBits(bits[it.off:])
		case !r.table.isBits() && int(it.off) < len(regs):
			v, ok = t.decodeRegs(regs[it.off:])
		}
		s.Value, s.Quality = v, model.Quality{Code: model.Good}
		if !ok {
			s.Quality = model.Quality{Code: model.Bad, Reason: "short response"}
		}
		s.SourceTime, s.EdgeTime = now, now
	}
}

// read performs one planned request, retrying failures other than Modbus
// exceptions up to d.retries times. After an error that is not a timeout the
// connection is reopened first, as it is probably broken; after a timeout
// the same connection is kept, and a late answer to the timed-out request is
// discarded by the library because its transaction id no longer matches.
func (d *device) read(ctx context.Context, r *request) (regs []uint16, bits []bool, err error) {
	for attempt := 0; ; attempt++ {
		d.requests.Add(1)
		switch r.table {
		case tableCoil:
			bits, err = d.client.ReadCoils(r.start, r.count)
		case tableDiscrete:
			bits, err = d.client.ReadDiscreteInputs(r.start, r.count)
		case tableHolding:
			regs, err = d.client.ReadRegisters(r.start, r.count, mb.HOLDING_REGISTER)
		default:
			regs, err = d.client.ReadRegisters(r.start, r.count, mb.INPUT_REGISTER)
		}
		if err == nil {
			return regs, bits, nil
		}
		d.requestErrors.Add(1)
		if _, isExc := exceptionName(err); isExc || attempt >= d.retries || ctx.Err() != nil {
			return nil, nil, err
		}
		d.log.Debug("modbus request failed, retrying", "table", r.table.String(), "start", r.start, "count", r.count, "err", err)
		if !isTimeout(err) {
			_ = d.client.Close()
			d.reconnects.Add(1)
			if oerr := d.client.Open(); oerr != nil {
				return nil, nil, fmt.Errorf("reconnect after %w: %w", err, oerr)
			}
		}
	}
}
