package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"
)

// Device is one simulated Modbus unit: the handler simonvetter's server
// calls from its connection goroutines (so it must be safe for concurrent
// use, and must return modbus.Err* values unwrapped, because the library
// maps them to exception codes by equality), and a model the server's
// ticker advances.
type Device interface {
	modbus.RequestHandler
	Step(dt time.Duration)
}

// Unit places a Device at a unit id. ID 0 is a wildcard: that device
// answers every unit id no other Unit claims, as a plain TCP device that
// ignores the field does.
type Unit struct {
	ID     uint8
	Device Device
}

// Defaults of ServeOptions.
const (
	DefaultMaxClients  = 64
	DefaultIdleTimeout = 2 * time.Minute
	bindAttempts       = 8
)

// ServeOptions configure a Server.
type ServeOptions struct {
	// Units are the devices served; at least one, unit ids unique.
	Units []Unit
	// Step is the ticker period that advances every device by Step; 0
	// leaves stepping to the caller (tests). The model advances by Step per
	// tick even when a tick is late, so simulated time may lag wall time
	// under load but never jumps.
	Step time.Duration
	// MaxClients caps concurrent connections (default 64).
	MaxClients uint
	// IdleTimeout closes connections idle this long (default 2 min).
	IdleTimeout time.Duration
}

// Server is a running Modbus TCP server for one or more simulated units.
type Server struct {
	addr  string
	log   *slog.Logger
	ms    *modbus.ModbusServer
	units [256]Device
	any   Device
	devs  []Device // distinct devices, stepped in order
	step  time.Duration

	quit      chan struct{}
	stopped   chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	stopOnce  sync.Once
	stopErr   error

	requests, exceptions atomic.Uint64
}

// Serve starts a Modbus TCP server on addr ("host:port"; port 0 picks a
// free one, see Addr) and, if opts.Step > 0, a ticker stepping its devices.
// The server stops when ctx is done or Close is called.
//
// simonvetter's server binds its own listener and does not expose it, so
// for port 0 Serve asks the kernel for a free port, releases it and starts
// the server there. Another process may take the port in between; Serve
// then retries with a new port (up to 8 times).
func Serve(ctx context.Context, addr string, opts ServeOptions, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, step: opts.Step, quit: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.setUnits(opts.Units); err != nil {
		return nil, fmt.Errorf("sim: serve %s: %w", addr, err)
	}
	if opts.Step < 0 {
		return nil, fmt.Errorf("sim: serve %s: negative step %s", addr, opts.Step)
	}
	if opts.MaxClients == 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sim: serve %s: %w", addr, err)
	}
	// The library logs through a *log.Logger; route it to slog at debug so
	// protocol chatter never reaches stdout.
	libLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	for attempt := 1; ; attempt++ {
		bind := addr
		if port == "0" {
			if bind, err = freePort(host); err != nil {
				return nil, fmt.Errorf("sim: serve %s: %w", addr, err)
			}
		}
		s.ms, err = modbus.NewServer(&modbus.ServerConfiguration{
			URL:        "tcp://" + bind,
			Timeout:    opts.IdleTimeout,
			MaxClients: opts.MaxClients,
			Logger:     libLog,
		}, s)
		if err != nil {
			return nil, fmt.Errorf("sim: serve %s: %w", addr, err)
		}
		if err = s.ms.Start(); err == nil {
			s.addr = bind
			break
		}
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || attempt == bindAttempts {
			return nil, fmt.Errorf("sim: serve %s: %w", addr, err)
		}
		log.Debug("free port taken before bind, retrying", "port", bind, "attempt", attempt)
	}
	s.log = log.With("addr", s.addr)
	s.wg.Add(1)
	go s.run(ctx)
	s.log.Debug("modbus simulator listening", "units", len(opts.Units), "step", opts.Step)
	return s, nil
}

func (s *Server) setUnits(units []Unit) error {
	if len(units) == 0 {
		return errors.New("no units")
	}
	seen := map[Device]bool{}
	for i, u := range units {
		if u.Device == nil {
			return fmt.Errorf("unit %d: nil device", u.ID)
		}
		taken := s.units[u.ID] != nil
		if u.ID == 0 {
			taken = s.any != nil
		}
		if taken {
			return fmt.Errorf("units[%d]: unit id %d used twice", i, u.ID)
		}
		if u.ID == 0 {
			s.any = u.Device
		} else {
			s.units[u.ID] = u.Device
		}
		if !seen[u.Device] {
			seen[u.Device] = true
			s.devs = append(s.devs, u.Device)
		}
	}
	return nil
}

// freePort asks the kernel for a free port on host and releases it.
func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	return addr, nil
}

// run steps the devices until ctx is done or Close.
func (s *Server) run(ctx context.Context) {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.step > 0 {
		t := time.NewTicker(s.step)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.stop()
			return
		case <-s.quit:
			return
		case <-tick:
			for _, d := range s.devs {
				d.Step(s.step)
			}
		}
	}
}

// Addr is the address the server listens on, with the actual port.
func (s *Server) Addr() string { return s.addr }

// Stats counts requests served and those answered with an exception.
type Stats struct {
	Requests   uint64
	Exceptions uint64
}

// Stats returns the server's request counters.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Exceptions: s.exceptions.Load()}
}

// Close stops the ticker, the listener and every client connection. It is
// idempotent and safe after ctx is done. The library's per-connection
// goroutines exit as their closed sockets fail, just after Close returns.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.wg.Wait()
		s.stop()
	})
	return s.stopErr
}

// Done is closed once the server has stopped listening, by Close or because
// Serve's ctx is done.
func (s *Server) Done() <-chan struct{} { return s.stopped }

func (s *Server) stop() {
	s.stopOnce.Do(func() {
		defer close(s.stopped)
		if err := s.ms.Stop(); err != nil {
			s.stopErr = fmt.Errorf("sim: stop %s: %w", s.addr, err)
		}
		s.log.Debug("modbus simulator stopped", "requests", s.requests.Load())
	})
}

// device routes a request to its unit.
func (s *Server) device(unit uint8) Device {
	if d := s.units[unit]; d != nil {
		return d
	}
	return s.any
}

// count records one request's outcome and passes err through unchanged.
func (s *Server) count(err error) error {
	s.requests.Add(1)
	if err != nil {
		s.exceptions.Add(1)
	}
	return err
}

// HandleCoils routes FC 01/05/15. An unknown unit id is answered with
// exception 0x0B, as a gateway whose target does not respond would.
func (s *Server) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	d := s.device(req.UnitId)
	if d == nil {
		return nil, s.count(modbus.ErrGWTargetFailedToRespond)
	}
	res, err := d.HandleCoils(req)
	return res, s.count(err)
}

// HandleDiscreteInputs routes FC 02.
func (s *Server) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	d := s.device(req.UnitId)
	if d == nil {
		return nil, s.count(modbus.ErrGWTargetFailedToRespond)
	}
	res, err := d.HandleDiscreteInputs(req)
	return res, s.count(err)
}

// HandleHoldingRegisters routes FC 03/06/16.
func (s *Server) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	d := s.device(req.UnitId)
	if d == nil {
		return nil, s.count(modbus.ErrGWTargetFailedToRespond)
	}
	res, err := d.HandleHoldingRegisters(req)
	return res, s.count(err)
}

// HandleInputRegisters routes FC 04.
func (s *Server) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	d := s.device(req.UnitId)
	if d == nil {
		return nil, s.count(modbus.ErrGWTargetFailedToRespond)
	}
	res, err := d.HandleInputRegisters(req)
	return res, s.count(err)
}

var _ modbus.RequestHandler = (*Server)(nil)

// Servers is a set of servers started together, one device each.
type Servers []*Server

// ServeMany serves each device on its own server at host:0 (one endpoint
// per device, as N PLCs would be), all stepped every step. On error the
// servers already started are closed.
func ServeMany(ctx context.Context, host string, step time.Duration, devs []Device, log *slog.Logger) (Servers, error) {
	ss := make(Servers, 0, len(devs))
	for i, d := range devs {
		s, err := Serve(ctx, net.JoinHostPort(host, "0"), ServeOptions{Units: []Unit{{Device: d}}, Step: step}, log)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sim: device %d: %w", i, err), ss.Close())
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// Addrs lists the servers' addresses in device order.
func (ss Servers) Addrs() []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Addr()
	}
	return out
}

// Close closes every server and joins their errors.
func (ss Servers) Close() error {
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
