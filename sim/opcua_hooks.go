package sim

import (
	"errors"
	"fmt"
	"math"
)

// Errors of WriteValue, for protocol front ends other than Modbus (the OPC
// UA simulator maps them to Bad_NodeIdUnknown, Bad_NotWritable,
// Bad_TypeMismatch and Bad_OutOfRange).
var (
	ErrUnknownTag   = errors.New("unknown tag")
	ErrNotWritable  = errors.New("tag is not writable")
	ErrTypeMismatch = errors.New("value has the wrong type for the tag")
	ErrOutOfRange   = errors.New("value is outside the tag's limits")
)

// WriteValue writes a writable tag by name, in engineering units, with the
// same interlocks and limits as a Modbus write: bool for coils, a number
// (any Go integer or float type) for numeric setpoints, string for text.
// The model is not stepped; the new value is visible to the next read.
func (p *Plant) WriteValue(name string, v any) error {
	i := -1
	for k := range p.specs {
		if p.specs[k].Name == name {
			i = k
			break
		}
	}
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrUnknownTag, name)
	}
	if !p.specs[i].Writable || p.binds[i].set == nil {
		return fmt.Errorf("%w: %s", ErrNotWritable, name)
	}
	var in val
	switch p.binds[i].kind {
	case vBool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%w: %s wants a bool, got %T", ErrTypeMismatch, name, v)
		}
		in = boolV(b)
	case vStr:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: %s wants a string, got %T", ErrTypeMismatch, name, v)
		}
		in = strV(s)
	default:
		f, ok := toFloat(v)
		if !ok {
			return fmt.Errorf("%w: %s wants a number, got %T", ErrTypeMismatch, name, v)
		}
		in = numV(f)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.st
	if err := p.binds[i].set(&next, in); err != nil {
		return fmt.Errorf("%w: %s = %v", ErrOutOfRange, name, v)
	}
	p.st = next
	p.refreshLocked()
	return nil
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, !math.IsNaN(t)
	case float32:
		return float64(t), !math.IsNaN(float64(t))
	case int:
		return float64(t), true
	case int8:
		return float64(t), true
	case int16:
		return float64(t), true
	case int32:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint:
		return float64(t), true
	case uint8:
		return float64(t), true
	case uint16:
		return float64(t), true
	case uint32:
		return float64(t), true
	case uint64:
		return float64(t), true
	}
	return 0, false
}
