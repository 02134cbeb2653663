package sim

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// SampleConfig is a complete example of the `sim` configuration, shown by
// the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Defaults applied by setDefaults to keys left out.
const (
	DefaultListen      = "127.0.0.1:5020"
	DefaultStep        = 100 * time.Millisecond
	DefaultFaultMTBF   = 20 * time.Minute
	DefaultAutoRestart = 30 * time.Second
	DefaultBenchTags   = 100
)

// Config is the configuration of `weir sim`: one filling line plant and,
// optionally, generic bench devices.
type Config struct {
	// Listen is the plant's host:port; port 0 picks a free one.
	Listen string `yaml:"listen"`
	// Seed makes the simulation reproducible.
	Seed int64 `yaml:"seed"`
	// Step is the simulation tick; the model advances by Step every Step.
	Step time.Duration `yaml:"step"`
	// UnitID the plant answers; 0 answers any unit id.
	UnitID int `yaml:"unit_id"`
	// FaultMTBF is the mean running time between random faults.
	FaultMTBF time.Duration `yaml:"fault_mtbf"`
	// NoFaults disables random faults.
	NoFaults bool `yaml:"no_faults"`
	// AutoRestart is how long after a fault a simulated operator resets it
	// and restarts the line.
	AutoRestart time.Duration `yaml:"auto_restart"`
	// LatchFaults disables the simulated operator: faults stay until a
	// client writes coil fault_reset.
	LatchFaults bool `yaml:"latch_faults"`
	// StartStopped starts the line stopped.
	StartStopped bool `yaml:"start_stopped"`
	// MaxClients caps concurrent connections per server.
	MaxClients int         `yaml:"max_clients"`
	Bench      BenchConfig `yaml:"bench"`
}

// BenchConfig adds generic load-test devices, each on its own port.
type BenchConfig struct {
	// Devices is the number of bench devices (0: none).
	Devices int `yaml:"devices"`
	// Tags is the number of uint16 holding registers per device.
	Tags int `yaml:"tags"`
	// BasePort is the first device's port, the others follow; 0 picks free
	// ports.
	BasePort int `yaml:"base_port"`
}

// setDefaults is the one place defaults live.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Step == 0 {
		c.Step = DefaultStep
	}
	if c.FaultMTBF == 0 {
		c.FaultMTBF = DefaultFaultMTBF
	}
	if c.AutoRestart == 0 {
		c.AutoRestart = DefaultAutoRestart
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.Bench.Tags == 0 {
		c.Bench.Tags = DefaultBenchTags
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.Listen != "" {
		if host, port, err := net.SplitHostPort(c.Listen); err != nil {
			errs.Addf("listen", "%q is not host:port: %w", c.Listen, err)
		} else if p, perr := strconv.Atoi(port); perr != nil || p < 0 || p > 65535 {
			errs.Addf("listen", "%q needs a port in 0..65535 (0 picks a free one)", c.Listen)
		} else if host == "" {
			errs.Addf("listen", "%q needs a host (0.0.0.0 to listen on every interface)", c.Listen)
		}
	}
	if c.Step < 0 || (c.Step > 0 && c.Step < Quantum) || c.Step > time.Minute {
		errs.Addf("step", "%s is out of range %s..1m", c.Step, Quantum)
	}
	if c.UnitID < 0 || c.UnitID > 255 {
		errs.Addf("unit_id", "%d is out of range 0..255 (0 answers any unit id)", c.UnitID)
	}
	if c.FaultMTBF < 0 || (c.FaultMTBF > 0 && c.FaultMTBF < time.Second) {
		errs.Addf("fault_mtbf", "%s must be at least 1s", c.FaultMTBF)
	}
	if c.AutoRestart < 0 {
		errs.Addf("auto_restart", "must not be negative")
	}
	if c.MaxClients < 0 || c.MaxClients > 10000 {
		errs.Addf("max_clients", "%d is out of range 1..10000", c.MaxClients)
	}
	b := &c.Bench
	if b.Devices < 0 || b.Devices > 1000 {
		errs.Addf("bench.devices", "%d is out of range 0..1000", b.Devices)
	}
	if b.Tags < 0 || b.Tags > MaxBenchTags {
		errs.Addf("bench.tags", "%d is out of range 1..%d", b.Tags, MaxBenchTags)
	}
	if b.BasePort < 0 || b.BasePort > 65535 {
		errs.Addf("bench.base_port", "%d is out of range 0..65535 (0 picks free ports)", b.BasePort)
	} else if b.BasePort > 0 && b.BasePort+b.Devices-1 > 65535 {
		errs.Addf("bench.base_port", "%d plus %d devices runs past port 65535", b.BasePort, b.Devices)
	}
	return errs.Err()
}

// plantOptions turns the configuration into the plant's options.
func (c *Config) plantOptions() PlantOptions {
	o := PlantOptions{Seed: c.Seed, FaultMTBF: c.FaultMTBF, AutoRestart: c.AutoRestart, StartStopped: c.StartStopped}
	if c.NoFaults {
		o.FaultMTBF = 0
	}
	if c.LatchFaults {
		o.AutoRestart = 0
	}
	return o
}

// Sim is a configured simulator: the plant and any bench devices, and,
// once started, their servers.
type Sim struct {
	cfg   Config
	log   *slog.Logger
	Plant *Plant
	Bench []*BenchDevice

	server  *Server
	benches Servers
}

// New builds the plant and bench devices; it does no network I/O.
func New(cfg Config, log *slog.Logger) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sim: config: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{cfg: cfg, log: log, Plant: NewPlant(cfg.plantOptions())}
	for i := range cfg.Bench.Devices {
		d, err := NewBenchDevice(cfg.Seed+1+int64(i), cfg.Bench.Tags)
		if err != nil {
			return nil, fmt.Errorf("sim: bench device %d: %w", i, err)
		}
		s.Bench = append(s.Bench, d)
	}
	return s, nil
}

// Start binds the servers and starts stepping. They stop when ctx is done
// or on Close.
func (s *Sim) Start(ctx context.Context) error {
	opts := ServeOptions{
		Units:      []Unit{{ID: uint8(s.cfg.UnitID), Device: s.Plant}},
		Step:       s.cfg.Step,
		MaxClients: uint(s.cfg.MaxClients),
	}
	srv, err := Serve(ctx, s.cfg.Listen, opts, s.log.With("device", "plant"))
	if err != nil {
		return err
	}
	s.server = srv
	s.log.Info("filling line simulator listening", "addr", srv.Addr(), "unit_id", s.cfg.UnitID, "seed", s.cfg.Seed)
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	for i, d := range s.Bench {
		port := 0
		if s.cfg.Bench.BasePort > 0 {
			port = s.cfg.Bench.BasePort + i
		}
		opts := ServeOptions{Units: []Unit{{Device: d}}, Step: s.cfg.Step, MaxClients: uint(s.cfg.MaxClients)}
		bs, err := Serve(ctx, net.JoinHostPort(host, strconv.Itoa(port)), opts, s.log.With("device", fmt.Sprintf("bench%d", i)))
		if err != nil {
			return errors.Join(fmt.Errorf("sim: bench device %d: %w", i, err), s.Close())
		}
		s.benches = append(s.benches, bs)
	}
	if len(s.benches) > 0 {
		s.log.Info("bench devices listening", "devices", len(s.benches), "tags", s.cfg.Bench.Tags,
			"first", s.benches[0].Addr(), "last", s.benches[len(s.benches)-1].Addr())
	}
	return nil
}

// Addr is the plant server's address, once started.
func (s *Sim) Addr() string {
	if s.server == nil {
		return ""
	}
	return s.server.Addr()
}

// BenchAddrs are the bench servers' addresses, once started.
func (s *Sim) BenchAddrs() []string { return s.benches.Addrs() }

// Close stops every server; it works after a partial Start.
func (s *Sim) Close() error {
	var err error
	if s.server != nil {
		err = s.server.Close()
	}
	return errors.Join(err, s.benches.Close())
}

// Run is `weir sim`: it serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
