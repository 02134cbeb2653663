package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/model"
)

// TestTransactionIDMismatchDiscarded: a server that first answers with a
// wrong transaction id, then with the right one. The source must report the
// right frame's value and never the wrong one's.
func TestTransactionIDMismatchDiscarded(t *testing.T) {
	const right, wrong = 42, 0xBAD
	srv := startFake(t, func(c net.Conn, r mbapReq) error {
		if _, err := c.Write(frame(r.txn+100, r.unit, regsPDU(r.fc, wrong))); err != nil {
			return err
		}
		_, err := c.Write(frame(r.txn, r.unit, regsPDU(r.fc, right)))
		return err
	})
	src := mustNew(t, oneDevice("plc", srv.addr(), 20*time.Millisecond, nil))
	rec := newRecorder()
	startSource(t, src, rec)
	got := rec.waitFor(t, 5*time.Second, "3 batches", func(b [][]model.Sample) bool { return len(b) >= 3 })
	for _, b := range got {
		if len(b) != 1 || !b[0].Quality.IsGood() || !b[0].Value.Equal(model.Uint(right)) {
			t.Fatalf("batch %v, want one good sample of %d", b, right)
		}
	}
	if c := src.Status().Children[0].Counters; c["request_errors"] != 0 || c["requests"] < 3 {
		t.Errorf("counters %v", c)
	}
}

// handler serves fixed registers through simonvetter's own server, with
// exceptions for some ranges.
type handler struct{}

func (handler) HandleCoils(r *mb.CoilsRequest) ([]bool, error) {
	return make([]bool, r.Quantity), nil
}
func (handler) HandleDiscreteInputs(r *mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrServerDeviceBusy
}
func (handler) HandleHoldingRegisters(r *mb.HoldingRegistersRequest) ([]uint16, error) {
	if int(r.Addr)+int(r.Quantity) > 100 {
		return nil, mb.ErrIllegalDataAddress
	}
	regs := make([]uint16, r.Quantity)
	for i := range regs {
		regs[i] = r.Addr + uint16(i) + 1000
	}
	return regs, nil
}
func (handler) HandleInputRegisters(*mb.InputRegistersRequest) ([]uint16, error) {
	return nil, mb.ErrIllegalFunction
}

// startMBServer starts simonvetter's server on a free port. The library
// cannot listen on :0 and report the port, so a port is picked by listening
// on :0 and closing; another process may grab it in between, hence the retry.
func startMBServer(t *testing.T, h mb.RequestHandler) string {
	t.Helper()
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		srv, err := mb.NewServer(&mb.ServerConfiguration{
			URL: "tcp://" + addr, Timeout: 30 * time.Second, MaxClients: 4, Logger: log.New(io.Discard, "", 0),
		}, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			continue
		}
		t.Cleanup(func() { srv.Stop() })
		return addr
	}
	t.Fatal("no free port for the Modbus server after 10 tries")
	return ""
}

func TestExceptionBadQuality(t *testing.T) {
	addr := startMBServer(t, handler{})
	cfg := oneDevice("plc", addr, 20*time.Millisecond, func(d *DeviceConfig) {
		d.Groups[0].Tags = []TagConfig{
			{Name: "ok0", Table: "holding", Address: 0, Type: "uint16"},
			{Name: "ok1", Table: "holding", Address: 5, Type: "uint16"},
			{Name: "beyond", Table: "holding", Address: 200, Type: "uint16"},
			{Name: "input", Table: "input", Address: 0, Type: "uint16"},
			{Name: "coil", Table: "coil", Address: 3, Type: "bool"},
			{Name: "di", Table: "discrete_input", Address: 3, Type: "bool"},
		}
	})
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	b := rec.waitFor(t, 5*time.Second, "a batch", func(b [][]model.Sample) bool { return len(b) >= 2 })[1]
	want := map[string]model.Quality{
		"test/plc/ok0":    {},
		"test/plc/ok1":    {},
		"test/plc/beyond": {Code: model.Bad, Reason: "illegal data address"},
		"test/plc/input":  {Code: model.Bad, Reason: "illegal function"},
		"test/plc/coil":   {},
		"test/plc/di":     {Code: model.Bad, Reason: "server device busy"},
	}
	if len(b) != len(want) {
		t.Fatalf("batch has %d samples, want %d: %v", len(b), len(want), b)
	}
	for _, s := range b {
		if q, ok := want[s.Path]; !ok || s.Quality != q {
			t.Errorf("%s quality %v, want %v", s.Path, s.Quality, q)
		}
		if s.SourceTime == 0 || s.EdgeTime != s.SourceTime {
			t.Errorf("%s times %d/%d", s.Path, s.SourceTime, s.EdgeTime)
		}
	}
	if b[0].Value.AsUint() != 1000 || b[1].Value.AsUint() != 1005 || b[4].Value.Kind() != model.KindBool {
		t.Errorf("good values %v %v %v", b[0].Value, b[1].Value, b[4].Value)
	}
	st := src.Status().Children[0]
	if st.State != "running" || st.Counters["exceptions"] < 3 || st.Gauges["requests_per_cycle"] != 5 {
		t.Errorf("status %+v", st)
	}
	if st.LastError == "" {
		t.Error("last_error does not mention the exception")
	}
}

func TestExceptionNames(t *testing.T) {
	tests := []struct {
		err  error
		name string
		exc  bool
	}{
		{mb.ErrIllegalFunction, "illegal function", true},
		{mb.ErrIllegalDataAddress, "illegal data address", true},
		{fmt.Errorf("wrapped: %w", mb.ErrIllegalDataValue), "illegal data value", true},
		{mb.ErrServerDeviceFailure, "server device failure", true},
		{mb.ErrAcknowledge, "acknowledge", true},
		{mb.ErrServerDeviceBusy, "server device busy", true},
		{mb.ErrMemoryParityError, "memory parity error", true},
		{mb.ErrGWPathUnavailable, "gateway path unavailable", true},
		{mb.ErrGWTargetFailedToRespond, "gateway target device failed to respond", true},
		{errors.New("unknown exception code (12)"), "unknown exception code (12)", true},
		{mb.ErrRequestTimedOut, "", false},
		{mb.ErrProtocolError, "", false},
		{io.EOF, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			name, exc := exceptionName(tt.err)
			if name != tt.name || exc != tt.exc {
				t.Errorf("got %q %v", name, exc)
			}
		})
	}
}

func TestDeviceDownEmitsOnce(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name   string
		addr   func(t *testing.T) string
		reason string
	}{
		{"silent device times out", func(t *testing.T) string {
			return startFake(t, func(net.Conn, mbapReq) error { return nil }).addr()
		}, model.ReasonTimeout},
		{"refused connection is unreachable", func(*testing.T) string { return closedAddr }, model.ReasonUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mustNew(t, oneDevice("plc", tt.addr(t), 20*time.Millisecond, func(d *DeviceConfig) {
				d.Timeout = 50 * time.Millisecond
			}))
			rec := newRecorder()
			stop := startSource(t, src, rec)
			eventually(t, 10*time.Second, "two reconnect attempts", func() bool {
				return src.Status().Children[0].Counters["reconnects"] >= 2
			})
			stop()
			got := rec.snapshot()
			if len(got) != 1 || len(got[0]) != 1 {
				t.Fatalf("want exactly one bad batch, got %v", got)
			}
			s := got[0][0]
			if s.Path != "test/plc/v" || s.Quality != (model.Quality{Code: model.Bad, Reason: tt.reason}) || s.Value.IsValid() {
				t.Errorf("bad sample %+v", s)
			}
			if st := src.Status().Children[0]; st.LastError == "" || st.Counters["request_errors"] == 0 && tt.reason == model.ReasonTimeout {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// TestRetryReconnects: the first connection breaks on the first request;
// the retry reconnects and the cycle succeeds without a bad batch.
func TestRetryReconnects(t *testing.T) {
	srv := startFake(t, func(c net.Conn, r mbapReq) error {
		if r.connection == 0 {
			return errHangUp
		}
		return answerAddr(c, r)
	})
	src := mustNew(t, oneDevice("plc", srv.addr(), 20*time.Millisecond, func(d *DeviceConfig) {
		d.Groups[0].Tags[0].Address = 7
	}))
	rec := newRecorder()
	startSource(t, src, rec)
	got := rec.waitFor(t, 5*time.Second, "2 batches", func(b [][]model.Sample) bool { return len(b) >= 2 })
	for _, b := range got {
		if !b[0].Quality.IsGood() || b[0].Value.AsUint() != 7 {
			t.Fatalf("batch %v", b)
		}
	}
	c := src.Status().Children[0].Counters
	if c["reconnects"] != 1 || c["request_errors"] != 1 {
		t.Errorf("counters %v", c)
	}
}

// TestDownThenUp: without retries a broken connection takes the device down
// (one bad batch); after reconnecting it delivers good values again.
func TestDownThenUp(t *testing.T) {
	srv := startFake(t, func(c net.Conn, r mbapReq) error {
		if r.connection < 2 {
			return errHangUp
		}
		return answerAddr(c, r)
	})
	src := mustNew(t, oneDevice("plc", srv.addr(), 20*time.Millisecond, func(d *DeviceConfig) {
		d.Retries = intp(0)
	}))
	rec := newRecorder()
	startSource(t, src, rec)
	got := rec.waitFor(t, 10*time.Second, "a good batch", func(b [][]model.Sample) bool {
		return len(b) > 0 && b[len(b)-1][0].Quality.IsGood()
	})
	if len(got) != 2 || got[0][0].Quality.Reason != model.ReasonUnreachable {
		t.Errorf("want one bad (unreachable) then one good batch, got %v", got)
	}
	eventually(t, 5*time.Second, "running", func() bool {
		st := src.Status().Children[0]
		return st.State == "running" && st.LastError == ""
	})
	if c := src.Status().Children[0].Counters; c["reconnects"] != 2 {
		t.Errorf("counters %v", c)
	}
}

// TestGroupsEmitOwnBatches: each group's batch holds exactly its tags.
func TestGroupsEmitOwnBatches(t *testing.T) {
	srv := startFake(t, answerAddr)
	cfg := oneDevice("plc", srv.addr(), 10*time.Millisecond, func(d *DeviceConfig) {
		d.Groups[0].Tags = append(d.Groups[0].Tags, TagConfig{Name: "w", Table: "holding", Address: 1, Type: "uint16"})
		d.Groups = append(d.Groups, GroupConfig{Interval: 30 * time.Millisecond, Tags: []TagConfig{
			{Name: "slow", Table: "input", Address: 50, Type: "int16", Scale: new(2.0)},
		}})
	})
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	got := rec.waitFor(t, 5*time.Second, "3 slow batches", func(b [][]model.Sample) bool {
		n := 0
		for _, x := range b {
			if x[0].Path == "test/plc/slow" {
				n++
			}
		}
		return n >= 3
	})
	fast := 0
	for _, b := range got {
		switch {
		case len(b) == 2 && b[0].Path == "test/plc/v" && b[1].Path == "test/plc/w":
			fast++
			if b[0].Value.AsUint() != 0 || b[1].Value.AsUint() != 1 {
				t.Errorf("fast values %v", b)
			}
		case len(b) == 1 && b[0].Path == "test/plc/slow":
			if !b[0].Value.Equal(model.Float(100)) {
				t.Errorf("slow value %v", b[0].Value)
			}
		default:
			t.Errorf("unexpected batch %v", b)
		}
	}
	if fast < 4 {
		t.Errorf("only %d fast batches for 3 slow ones", fast)
	}
	if g := src.Status().Children[0].Gauges["requests_per_cycle"]; g != 2 {
		t.Errorf("requests_per_cycle %v", g)
	}
}

// TestScheduleSkipsMissedTicks drives the scheduler with fixed clocks.
func TestScheduleSkipsMissedTicks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	tests := []struct {
		name     string
		now      time.Duration // after t0, when the cycle that started at t0 ended
		next     time.Duration
		overruns uint64
	}{
		{"on time", 30 * ms, 100 * ms, 0},
		{"ends exactly on the next tick", 100 * ms, 100 * ms, 0},
		{"one tick missed", 101 * ms, 200 * ms, 1},
		{"several ticks missed, no burst", 350 * ms, 400 * ms, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &device{log: discardLog(), groups: []*group{{interval: 100 * ms}}}
			next := []time.Time{t0}
			d.schedule(next, 0, t0.Add(tt.now))
			if got := next[0].Sub(t0); got != tt.next || d.overruns.Load() != tt.overruns {
				t.Errorf("next +%v overruns %d, want +%v %d", got, d.overruns.Load(), tt.next, tt.overruns)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	srv := startFake(t, answerAddr)
	src := mustNew(t, oneDevice("plc", srv.addr(), 20*time.Millisecond, nil))
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 5*time.Second, "a batch", func(b [][]model.Sample) bool { return len(b) > 0 })
	if err := src.Run(context.Background(), rec); !errors.Is(err, errAlreadyRunning) {
		t.Errorf("second Run: %v", err)
	}
}
