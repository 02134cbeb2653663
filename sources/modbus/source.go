package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	mb "github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Compile-time guards: Source is a pipeline source that reports status.
var (
	_ pipeline.Source         = (*Source)(nil)
	_ pipeline.StatusReporter = (*Source)(nil)
	_ pipeline.TagLister      = (*Source)(nil)
)

// errAlreadyRunning is returned by a second, concurrent Run: each device
// allows one connection from us, and two pollers would double the load.
var errAlreadyRunning = errors.New("modbus source: Run is already in progress")

// Source polls Modbus TCP devices and emits one batch per device group and
// cycle.
type Source struct {
	log     *slog.Logger
	devices []*device
	tags    []model.Tag
	running atomic.Bool
}

// New validates cfg, applies defaults and plans every group's requests. It
// does no network I/O; connections are opened by Run.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("modbus source: %w", err)
	}
	// setDefaults writes into the device structs: work on a copy so the
	// caller's config (kept for hot-reload diffs) stays as written.
	cfg.Devices = slices.Clone(cfg.Devices)
	cfg.setDefaults()

	s := &Source{log: log}
	for i := range cfg.Devices {
		d, err := newDevice(cfg.Devices[i], log.With("device", cfg.Devices[i].Name))
		if err != nil {
			return nil, fmt.Errorf("modbus source: device %s: %w", cfg.Devices[i].Name, err)
		}
		if cfg.Stagger == nil || *cfg.Stagger {
			d.phase = float64(i) / float64(len(cfg.Devices))
		}
		s.devices = append(s.devices, d)
		for _, g := range d.groups {
			for j := range g.tags {
				t := &g.tags[j]
				s.tags = append(s.tags, model.Tag{Path: t.path, Kind: t.kind, Unit: t.unit, Description: t.desc})
			}
		}
	}
	return s, nil
}

// Tags lists every tag the source produces, with its metadata. Kind is the
// kind of the emitted value (float when scale or offset is set).
func (s *Source) Tags() []model.Tag { return slices.Clone(s.tags) }

// Run polls every device in its own goroutine until ctx is done, then
// closes the connections and returns nil. Stopping takes at most one request
// timeout (a request in flight is not interruptible), or the connect timeout
// of the Modbus library (5 s) when a device is being dialled.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	if !s.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer s.running.Store(false)
	var wg sync.WaitGroup
	for _, d := range s.devices {
		wg.Go(func() { d.run(ctx, out) })
	}
	wg.Wait()
	return nil
}

// Status reports each device as a child; the source's own counters are the
// sums over its devices and its state is the worst of theirs.
func (s *Source) Status() pipeline.Status {
	st := pipeline.Status{Name: "modbus", Counters: map[string]uint64{}, State: pipeline.StateStopped, ChildSums: true}
	rank := map[string]int{pipeline.StateStopped: 0, pipeline.StateRunning: 1, pipeline.StateConnecting: 2, pipeline.StateRetrying: 3}
	for i, d := range s.devices {
		c := d.status()
		for k, v := range c.Counters {
			st.Counters[k] += v
		}
		if i == 0 || rank[c.State] > rank[st.State] {
			st.State = c.State
		}
		if c.LastError != "" && st.LastError == "" {
			st.LastError = c.LastError
		}
		st.Children = append(st.Children, c)
	}
	return st
}

// exceptionName maps the Modbus library's exception errors to the names of
// the Modbus specification; it reports false for every other error
// (timeouts, broken connections, malformed frames).
func exceptionName(err error) (string, bool) {
	var me mb.Error
	if !errors.As(err, &me) {
		// The library reports exception codes it does not know as a plain
		// error ("unknown exception code (N)").
		if err != nil && len(err.Error()) > 22 && err.Error()[:22] == "unknown exception code" {
			return err.Error(), true
		}
		return "", false
	}
	switch me {
	case mb.ErrIllegalFunction:
		return "illegal function", true
	case mb.ErrIllegalDataAddress:
		return "illegal data address", true
	case mb.ErrIllegalDataValue:
		return "illegal data value", true
	case mb.ErrServerDeviceFailure:
		return "server device failure", true
	case mb.ErrAcknowledge:
		return "acknowledge", true
	case mb.ErrServerDeviceBusy:
		return "server device busy", true
	case mb.ErrMemoryParityError:
		return "memory parity error", true
	case mb.ErrGWPathUnavailable:
		return "gateway path unavailable", true
	case mb.ErrGWTargetFailedToRespond:
		return "gateway target device failed to respond", true
	}
	return "", false
}
