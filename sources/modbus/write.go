package modbus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	mb "github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/writegate"
)

// Source writes tags for the write gate (package writegate), which is the
// only caller: it checks policy, rate and age and records every attempt.
var _ writegate.Writer = (*Source)(nil)

// ErrNotConnected is returned by WriteTag while the tag's device is not
// polled successfully: a write is sent only over a live connection and is
// never queued for later.
var ErrNotConnected = errors.New("device not connected")

// WriteTag writes v to the tag at path and confirms it by reading it back.
//
// The function codes: a coil is written with FC 5, a single register (16-bit
// types and bools taken from a register bit) with FC 6, wider values with
// FC 16; a device with write_multiple: true gets FC 15 and FC 16 for
// everything. A bool taken from a register bit is a read-modify-write of
// that register (other bits that change in between are overwritten: give
// such commands their own register where possible).
//
// Sequence on the device's connection: read the current value (old), write,
// read back and compare the raw registers/bit with what was sent; any
// difference (a device that ignores the write, clamps it, or an interlock
// that refuses it) is an error naming both values. Nothing is retried.
//
// Concurrency: the device goroutine owns the connection, and WriteTag
// borrows it. Each request holds the client library's own lock, so a write
// and the device's polls interleave request by request on the one
// connection (Modbus TCP answers one request at a time anyway), never
// inside a request. A per-device mutex keeps the three requests of one
// write together against other writes to the device. WriteTag refuses to
// run unless the device is in state running, which also guarantees the
// client has been opened.
func (s *Source) WriteTag(ctx context.Context, path string, v model.Value) (model.Value, error) {
	d, t := s.findTag(path)
	if t == nil {
		return model.Value{}, fmt.Errorf("modbus: write %s: unknown tag", path)
	}
	if t.table == tableInput || t.table == tableDiscrete {
		return model.Value{}, fmt.Errorf("modbus: write %s: read-only (%s table)", path, t.table)
	}
	old, err := d.writeTag(ctx, t, v)
	if err != nil {
		return old, fmt.Errorf("modbus: write %s: %w", path, err)
	}
	return old, nil
}

// findTag looks the path up among every device's tags. Writes are rare,
// so a scan beats keeping an index in step with the groups.
func (s *Source) findTag(path string) (*device, *tagDef) {
	for _, d := range s.devices {
		for _, g := range d.groups {
			for i := range g.tags {
				if g.tags[i].path == path {
					return d, &g.tags[i]
				}
			}
		}
	}
	return nil, nil
}

func (d *device) writeTag(ctx context.Context, t *tagDef, v model.Value) (model.Value, error) {
	// Check the value before touching the wire.
	var regs []uint16
	switch {
	case t.typ == typeBool && v.Kind() != model.KindBool:
		return model.Value{}, fmt.Errorf("%s needs a bool, not %s", t.typ, v.Kind())
	case t.typ != typeBool:
		var err error
		if regs, err = t.encodeRegs(v); err != nil {
			return model.Value{}, err
		}
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.mu.Lock()
	state := d.state
	d.mu.Unlock()
	if state != pipeline.StateRunning {
		return model.Value{}, fmt.Errorf("device %s: %w (state %s); nothing was sent", d.name, ErrNotConnected, state)
	}
	if err := ctx.Err(); err != nil {
		return model.Value{}, err
	}

	curRegs, curBits, err := d.readTag(t)
	if err != nil {
		return model.Value{}, fmt.Errorf("device %s: read before write: %w", d.name, err)
	}
	old := decodeOne(t, curRegs, curBits)
	if t.typ == typeBool && !t.table.isBits() {
		r := curRegs[0] &^ (1 << uint(t.bit))
		if v.AsBool() {
			r |= 1 << uint(t.bit)
		}
		regs = []uint16{r}
	}
	if err := ctx.Err(); err != nil {
		return old, fmt.Errorf("%w; nothing was sent", err)
	}

	d.requests.Add(1)
	switch {
	case t.table == tableCoil && d.writeMultiple:
		err = d.client.WriteCoils(t.addr, []bool{v.AsBool()})
	case t.table == tableCoil:
		err = d.client.WriteCoil(t.addr, v.AsBool())
	case len(regs) == 1 && !d.writeMultiple:
		err = d.client.WriteRegister(t.addr, regs[0])
	default:
		err = d.client.WriteRegisters(t.addr, regs)
	}
	if err != nil {
		d.requestErrors.Add(1)
		if name, isExc := exceptionName(err); isExc {
			d.exceptions.Add(1)
			return old, fmt.Errorf("device %s: write refused with exception: %s", d.name, name)
		}
		return old, fmt.Errorf("device %s: write (outcome unknown, read the tag to find out): %w", d.name, err)
	}

	backRegs, backBits, err := d.readTag(t)
	if err != nil {
		return old, fmt.Errorf("device %s: written, but the read-back failed: %w", d.name, err)
	}
	var same bool
	switch {
	case t.table == tableCoil:
		same = len(backBits) > 0 && backBits[0] == v.AsBool()
	case t.typ == typeBool:
		same = len(backRegs) > 0 && backRegs[0]>>uint(t.bit)&1 == regs[0]>>uint(t.bit)&1
	default:
		same = slices.Equal(backRegs, regs)
	}
	if !same {
		want := v
		if t.typ != typeBool {
			want = decodeOne(t, regs, nil)
		}
		return old, fmt.Errorf("device %s: read-back mismatch: wrote %s, device holds %s", d.name, want, decodeOne(t, backRegs, backBits))
	}
	return old, nil
}

// readTag reads exactly the tag's registers or bit, once, without retry.
func (d *device) readTag(t *tagDef) (regs []uint16, bits []bool, err error) {
	d.requests.Add(1)
	switch t.table {
	case tableCoil:
		bits, err = d.client.ReadCoils(t.addr, 1)
	default:
		regs, err = d.client.ReadRegisters(t.addr, t.width, mb.HOLDING_REGISTER)
	}
	if err != nil {
		d.requestErrors.Add(1)
		if _, isExc := exceptionName(err); isExc {
			d.exceptions.Add(1)
		}
	}
	return regs, bits, err
}

// decodeOne decodes a tag from a read of exactly its registers or bit;
// invalid when the read was short.
func decodeOne(t *tagDef, regs []uint16, bits []bool) model.Value {
	var v model.Value
	if t.table.isBits() {
		v, _ = t.decodeBits(bits)
	} else {
		v, _ = t.decodeRegs(regs)
	}
	return v
}
