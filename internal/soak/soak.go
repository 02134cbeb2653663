package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sim"
)

// Fault kinds, as named in Options.Faults and -faults.
const (
	FaultKill   = "kill"   // SIGKILL of the gateway at the end of each cycle
	FaultBroker = "broker" // the broker killed and restarted
	FaultNet    = "net"    // the proxy drops or blackholes the sink's connection
	FaultDisk   = "disk"   // the data volume filled (root only: a tmpfs)
	FaultPoison = "poison" // a Sparkplug metric name that is not UTF-8
)

// AllFaults lists every fault kind.
var AllFaults = []string{FaultKill, FaultBroker, FaultNet, FaultDisk, FaultPoison}

// Options configure a soak.
type Options struct {
	// Duration bounds the fault phase; Kills, when > 0, ends it after that
	// many gateway kills instead (whichever comes first; 0 Duration: none).
	Duration time.Duration
	Kills    int
	Seed     uint64
	// MinRun and MaxRun bound how long each gateway run lives.
	MinRun, MaxRun time.Duration
	Faults         []string
	// Dir is the work directory (config, data); empty: a temporary one.
	Dir string
	// Command runs `weir args…` (the gateway child).
	Command Command
	// Progress, when > 0, prints a line every Progress cycles to Log.
	Progress int
	Log      *slog.Logger
}

// Validate checks the options without I/O.
func (o *Options) Validate() error {
	var errs []error
	if o.Duration <= 0 && o.Kills <= 0 {
		errs = append(errs, errors.New("set a duration or a number of kills"))
	}
	if o.MinRun <= 0 || o.MaxRun < o.MinRun {
		errs = append(errs, fmt.Errorf("run time bounds %v..%v: need 0 < min <= max", o.MinRun, o.MaxRun))
	}
	for _, f := range o.Faults {
		if !contains(AllFaults, f) {
			errs = append(errs, fmt.Errorf("fault %q: not one of %s", f, strings.Join(AllFaults, ", ")))
		}
	}
	if o.Kills > 0 && !contains(o.Faults, FaultKill) {
		errs = append(errs, errors.New("a number of kills needs the kill fault"))
	}
	if o.Command == nil {
		errs = append(errs, errors.New("no gateway command"))
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// harness is one soak in progress.
type harness struct {
	o       Options
	log     *slog.Logger
	rng     *rand.Rand
	check   *Checker
	broker  *Broker
	proxy   *Proxy
	disk    *diskFull
	cfgPath string
	token   string // the viewer token /status is read with

	mu     sync.Mutex // guards counts and run
	counts Counts
	run    int // index of the current run in check, -1 before the first
}

// Run soaks the gateway and reports; the error is for the harness's own
// failures (the verdict on the gateway is in the report).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	start := time.Now()
	h := &harness{o: o, log: o.Log, rng: rand.New(rand.NewPCG(o.Seed, 0x50a4)), check: NewChecker(), run: -1}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "weir-soak-")
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	prefix := fmt.Sprintf("weir-soak/%d", os.Getpid())
	var err error
	if h.broker, err = NewBroker(prefix, h.observe, h.log); err != nil {
		return nil, err
	}
	if err := h.broker.Start(); err != nil {
		return nil, err
	}
	defer h.broker.Stop()
	if h.proxy, err = NewProxy(h.broker.Addr()); err != nil {
		return nil, err
	}
	defer h.proxy.Close()
	plant, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: int64(o.Seed), NoFaults: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if err := plant.Start(ctx); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	defer plant.Close()

	dataDir := filepath.Join(dir, "data")
	if contains(o.Faults, FaultDisk) {
		d, err := mountTmpfs(dataDir, 48<<20)
		if err != nil {
			h.note(err.Error())
		} else {
			h.disk = d
			defer func() {
				if err := d.unmount(); err != nil {
					h.log.Warn("soak: tmpfs left mounted", "err", err)
				}
			}()
		}
	}
	h.cfgPath = filepath.Join(dir, "weir.yaml")
	cfg := gatewayConfig(plant.Addr(), h.proxy.Addr(), h.broker.Addr(), prefix, dataDir, contains(o.Faults, FaultPoison))
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if h.token, err = statusToken(dataDir); err != nil {
		return nil, err
	}

	rep := &Report{Options: o}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaos sync.WaitGroup
	chaos.Go(func() { h.chaos(chaosCtx) })
	loopErr := h.cycles(ctx, rep)
	stopChaos()
	chaos.Wait()
	h.heal()
	if loopErr == nil || errors.Is(loopErr, context.Canceled) {
		loopErr = h.final(rep)
	}
	// The gateway has stopped: a gap is excused only for an id its
	// dead-letter store holds.
	if ids, err := deadLetterIDs(dataDir); err != nil {
		h.note("dead letters not read (gaps excused by count): " + err.Error())
	} else {
		h.check.DeadLettered(ids)
	}
	// The broker may still be forwarding the last messages: wait until
	// nothing accepted is missing, or report what stays missing.
	for deadline := time.Now().Add(30 * time.Second); ; {
		rep.Result = h.check.Result()
		if rep.Result.Lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling what the broker saw
	}
	h.mu.Lock()
	rep.Counts = h.counts
	h.mu.Unlock()
	rep.Counts.Wall = time.Since(start)
	return rep, loopErr
}

// observe is the broker's view of one message from the gateway's sink.
func (h *harness) observe(tag string, data []byte) {
	if strings.Contains(tag, "/_status/") || strings.HasPrefix(tag, "_status/") {
		return
	}
	s, err := payload.DecodeSample(data)
	if err != nil {
		h.log.Warn("soak: undecodable message", "tag", tag, "err", err)
		return
	}
	h.check.Observe(tag, s.Seq)
}

func (h *harness) note(s string) {
	h.mu.Lock()
	h.counts.Notes = append(h.counts.Notes, s)
	h.mu.Unlock()
	h.log.Info("soak: " + s)
}

func (h *harness) count(f func(*Counts)) {
	h.mu.Lock()
	f(&h.counts)
	h.mu.Unlock()
}

// rand returns a duration in [lo, hi]; the RNG is not safe for concurrent
// use, so the chaos goroutine has its own.
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cycles runs the gateway again and again, ending each run with SIGKILL
// (or SIGTERM without the kill fault), until the duration or the kill
// count is reached.
func (h *harness) cycles(ctx context.Context, rep *Report) error {
	var end <-chan time.Time
	if h.o.Duration > 0 {
		t := time.NewTimer(h.o.Duration)
		defer t.Stop()
		end = t.C
	}
	kill := contains(h.o.Faults, FaultKill)
	for n := 1; ; n++ {
		select {
		case <-end:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		h.mu.Lock()
		kills := h.counts.Kills
		h.mu.Unlock()
		if h.o.Kills > 0 && kills >= h.o.Kills {
			return nil
		}
		g, idx, err := h.start(ctx)
		if err != nil {
			return err
		}
		sleep(ctx, between(h.rng, h.o.MinRun, h.o.MaxRun))
		h.read(g, idx)
		if g.exited() {
			h.crashed(rep, g)
			continue
		}
		if kill {
			sleep(ctx, time.Duration(h.rng.IntN(30))*time.Millisecond) // a moment after the reading
			g.kill()
			h.check.UpdateRun(idx, func(r *RunInfo) { r.Killed = true })
			h.count(func(c *Counts) { c.Kills++ })
		} else {
			if err := g.stop(30 * time.Second); err != nil {
				h.log.Warn("soak: graceful stop", "err", err)
			}
			h.count(func(c *Counts) { c.Graceful++ })
		}
		if h.o.Progress > 0 && n%h.o.Progress == 0 {
			res := h.check.Result()
			h.mu.Lock()
			c := h.counts
			h.mu.Unlock()
			h.log.Info("soak: progress", "runs", c.Runs, "kills", c.Kills, "broker_restarts", c.BrokerRestarts,
				"net_cuts", c.NetDrops+c.NetBlackholes, "disk_full", c.DiskFull, "poison", c.Poison,
				"delivered", res.Delivered, "duplicates", res.DuplicateCount(), "order_violations", res.OrderViolations())
		}
	}
}

// start runs the gateway until its engine started, retrying a while when
// it fails to (a full disk can stop it from opening its store).
func (h *harness) start(ctx context.Context) (*gateway, int, error) {
	var last error
	for try := 0; try < 20; try++ {
		g, err := startGateway(h.o.Command, h.cfgPath)
		if err != nil {
			return nil, 0, err
		}
		g.token = h.token
		first, err := g.firstSeq(ctx, 30*time.Second)
		if err == nil {
			idx := h.check.AddRun(RunInfo{FirstSeq: first})
			h.mu.Lock()
			h.run = idx
			h.counts.Runs++
			h.mu.Unlock()
			return g, idx, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		last = err
		h.count(func(c *Counts) { c.StartFailures++ })
		h.log.Warn("soak: gateway failed to start; retrying", "err", err)
		sleep(ctx, time.Second)
	}
	return nil, 0, fmt.Errorf("the gateway does not start: %w", last)
}

// read records what the run's buffer accepted so far.
func (h *harness) read(g *gateway, idx int) {
	st, err := g.status()
	if err != nil {
		h.log.Debug("soak: status", "err", err)
		return
	}
	h.check.UpdateRun(idx, func(r *RunInfo) {
		r.Accepted = max(r.Accepted, st.Pushed)
		r.DeadLettered = max(r.DeadLettered, st.DeadLettered)
	})
}

func (h *harness) crashed(rep *Report, g *gateway) {
	h.count(func(c *Counts) { c.Crashes++ })
	if len(rep.Crashed) < 5 {
		rep.Crashed = append(rep.Crashed, fmt.Sprintf("%v\n%s", g.err, g.logTail()))
	}
	h.log.Warn("soak: the gateway exited by itself", "err", g.err)
}

// final runs the gateway with every fault healed until its buffer is
// empty, then stops it gracefully.
func (h *harness) final(rep *Report) error {
	ctx := context.Background()
	g, idx, err := h.start(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := g.status()
		if err == nil && st.Depth == 0 {
			break
		}
		if g.exited() {
			h.crashed(rep, g)
			return errors.New("the final run exited by itself")
		}
		if time.Now().After(deadline) {
			g.kill()
			return fmt.Errorf("the final run did not deliver the backlog within 3 minutes (%+v, %v)", st, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the child's /status
	}
	h.read(g, idx)
	if contains(h.o.Faults, FaultPoison) {
		h.excuse() // the stale marks of the poison metrics as the source stops
	}
	if err := g.stop(30 * time.Second); err != nil {
		h.log.Warn("soak: final run stop", "err", err)
	}
	h.count(func(c *Counts) { c.Graceful++ })
	return nil
}

// chaos injects the faults other than kill at random moments until ctx
// is done; each heals after a random while.
func (h *harness) chaos(ctx context.Context) {
	var kinds []string
	for _, f := range h.o.Faults {
		if f == FaultDisk && h.disk == nil {
			continue
		}
		if f != FaultKill {
			kinds = append(kinds, f)
		}
	}
	if len(kinds) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(h.o.Seed, 0xc4a05))
	var poisonN atomic.Uint64
	for {
		if !sleep(ctx, between(rng, 500*time.Millisecond, 3*time.Second)) {
			return
		}
		hold := between(rng, 200*time.Millisecond, 2*time.Second)
		switch kinds[rng.IntN(len(kinds))] {
		case FaultBroker:
			h.broker.Stop()
			h.count(func(c *Counts) { c.BrokerRestarts++ })
			if contains(kinds, FaultPoison) {
				// The Sparkplug host marks every metric stale when it
				// loses the broker: the poison metrics once more.
				h.excuse()
			}
			sleep(ctx, hold)
			if err := h.broker.Start(); err != nil {
				h.log.Error("soak: broker restart", "err", err)
			}
		case FaultNet:
			if rng.IntN(2) == 0 {
				h.proxy.Drop()
				h.count(func(c *Counts) { c.NetDrops++ })
			} else {
				h.proxy.Blackhole()
				h.count(func(c *Counts) { c.NetBlackholes++ })
			}
			sleep(ctx, hold)
			h.proxy.Heal()
		case FaultDisk:
			// Leave less than min_free_bytes (1 MiB): the buffer refuses
			// samples and, with policy block, holds the source back.
			if err := h.disk.fill(512 << 10); err != nil {
				h.log.Warn("soak: disk-full episode", "err", err)
				continue
			}
			h.count(func(c *Counts) { c.DiskFull++ })
			sleep(ctx, hold)
			if err := h.disk.drain(); err != nil {
				h.log.Error("soak: disk-full episode", "err", err)
			}
		case FaultPoison:
			b, err := poisonPayload(poisonN.Add(1))
			if err != nil {
				h.log.Error("soak: poison", "err", err)
				return
			}
			if h.broker.Publish(poisonTopic, b) {
				h.count(func(c *Counts) { c.Poison++ })
				h.excuse()
			}
		}
	}
}

// excuse lets the current run miss poisonSamples more ids: the poison
// samples of one message (or stale mark) may have been dead-lettered.
func (h *harness) excuse() {
	h.mu.Lock()
	run := h.run
	h.mu.Unlock()
	if run >= 0 {
		h.check.UpdateRun(run, func(r *RunInfo) { r.Poison += poisonSamples })
	}
}

// heal ends every fault.
func (h *harness) heal() {
	if err := h.broker.Start(); err != nil {
		h.log.Error("soak: broker restart", "err", err)
	}
	h.proxy.Heal()
	if h.disk != nil {
		if err := h.disk.drain(); err != nil {
			h.log.Error("soak: disk", "err", err)
		}
	}
}

// gatewayConfig is the soaked gateway: the simulated plant (and, with
// poison, a Sparkplug host on the broker) → durable buffer (fsync always,
// policy block) → MQTT sink through the proxy.
func gatewayConfig(simAddr, proxyAddr, brokerAddr, prefix, dataDir string, poison bool) string {
	var src strings.Builder
	fmt.Fprintf(&src, `  - name: plant
    modbus:
      devices:
        - name: plc
          address: %q
          namespace: acme/soak/line/filler
          groups:
            - interval: 20ms
              tags:
                - {name: product_temp, table: input, address: 0, type: float32}
                - {name: bottle_count, table: input, address: 6, type: uint32, order: CDAB}
                - {name: speed_setpoint, table: holding, address: 0, type: uint16}
                - {name: run_cmd, table: coil, address: 0, type: bool}
`, simAddr)
	if poison {
		fmt.Fprintf(&src, `  - name: sparkplug
    mqtt:
      url: tcp://%s
      client_id: weir-soak-src-%d
      keep_alive: 2s
      connect_timeout: 2s
      sparkplug:
        group_ids: [%s]
        host_id: weir-soak
        publish_state: false
`, brokerAddr, os.Getpid(), poisonGroup)
	}
	return fmt.Sprintf(`node: {id: weir-soak}
data_dir: %q
engine: {drain_timeout: 5s}
sources:
%ssinks:
  - name: uns
    batch_size: 200
    buffer: {type: disk, fsync: always, policy: block, min_free_bytes: 1048576}
    mqtt:
      url: tcp://%s
      client_id: weir-soak-%d
      keep_alive: 2s
      connect_timeout: 2s
      topic_prefix: %s
      qos: 1
`, dataDir, src.String(), proxyAddr, os.Getpid(), prefix)
}

// deadLetterIDs reads the sequence ids of every dead letter of the soak's
// sink, read-only, from the stopped gateway's data dir.
func deadLetterIDs(dataDir string) ([]uint64, error) {
	dir := durable.DeadLetterDir(filepath.Join(dataDir, "buffers", "uns"))
	causes, err := durable.DeadLetterCauses(dir)
	if err != nil {
		return nil, err
	}
	ids := []uint64{}
	for _, c := range causes {
		b, err := durable.OpenReadOnly(filepath.Join(dir, c), slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		err = b.Each(func(s model.Sample) error {
			ids = append(ids, s.Seq)
			return nil
		})
		if rerr := b.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}
