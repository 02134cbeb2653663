package model

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds a Value can hold. KindInvalid is the zero Value: "no value",
// which is what a bad-quality sample usually carries.
const (
	KindInvalid Kind = iota
	KindBool
	KindInt   // int64
	KindUint  // uint64
	KindFloat // float64
	KindString
	KindArray // []Value, all elements of one kind
)

var kindNames = [...]string{"invalid", "bool", "int", "uint", "float", "string", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a typed value. The zero Value is invalid (no value). Values are
// immutable once built; copying a Value is cheap and safe, and array elements
// are shared between copies.
type Value struct {
	bits uint64 // bool (0/1), int64, uint64 or float64 bits
	str  string
	arr  []Value
	kind Kind
}

// Bool, Int, Uint, Float, String and Array build Values.
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, bits: 1}
	}
	return Value{kind: KindBool}
}

// Int builds a signed integer Value.
func Int(i int64) Value { return Value{kind: KindInt, bits: uint64(i)} }

// Uint builds an unsigned integer Value.
func Uint(u uint64) Value { return Value{kind: KindUint, bits: u} }

// Float builds a floating point Value. NaN and ±Inf are kept as they are;
// encoders decide how to represent them.
func Float(f float64) Value { return Value{kind: KindFloat, bits: math.Float64bits(f)} }

// String builds a string Value.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Array builds an array Value. The caller hands over elems and must not
// modify it afterwards.
func Array(elems []Value) Value { return Value{kind: KindArray, arr: elems} }

// Kind reports the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsValid reports whether v holds a value.
func (v Value) IsValid() bool { return v.kind != KindInvalid }

// AsBool returns the boolean held by v; false for other kinds.
func (v Value) AsBool() bool { return v.kind == KindBool && v.bits != 0 }

// AsInt returns the int64 held by v; 0 for other kinds.
func (v Value) AsInt() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.bits)
}

// AsUint returns the uint64 held by v; 0 for other kinds.
func (v Value) AsUint() uint64 {
	if v.kind != KindUint {
		return 0
	}
	return v.bits
}

// AsFloat returns the float64 held by v; 0 for other kinds.
func (v Value) AsFloat() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(v.bits)
}

// AsString returns the string held by v; "" for other kinds.
func (v Value) AsString() string { return v.str }

// Elems returns the elements of an array Value; nil for other kinds. The
// slice is shared: do not modify it.
func (v Value) Elems() []Value { return v.arr }

// Float64 converts any numeric or boolean Value to float64, for processors
// that do arithmetic. ok is false for strings, arrays and invalid values.
func (v Value) Float64() (f float64, ok bool) {
	switch v.kind {
	case KindBool:
		return float64(v.bits), true
	case KindInt:
		return float64(int64(v.bits)), true
	case KindUint:
		return float64(v.bits), true
	case KindFloat:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// Equal reports whether a and b hold the same kind and value. Floats compare
// by bits, so NaN equals the same NaN: report-by-exception must not resend a
// stuck NaN forever.
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind || v.bits != o.bits || v.str != o.str || len(v.arr) != len(o.arr) {
		return false
	}
	for i := range v.arr {
		if !v.arr[i].Equal(o.arr[i]) {
			return false
		}
	}
	return true
}

// AppendJSON appends the JSON form of v to dst. NaN and ±Inf, which JSON
// cannot carry, are written as null. Strings are escaped per RFC 8259.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindBool:
		return strconv.AppendBool(dst, v.bits != 0)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.bits), 10)
	case KindUint:
		return strconv.AppendUint(dst, v.bits, 10)
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...)
		}
		return appendJSONFloat(dst, f)
	case KindString:
		return AppendJSONString(dst, v.str)
	case KindArray:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.AppendJSON(dst)
		}
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

// String formats v for humans and logs.
func (v Value) String() string {
	switch v.kind {
	case KindString:
		return strconv.Quote(v.str)
	case KindInvalid:
		return "<invalid>"
	}
	return string(v.AppendJSON(nil))
}

// GoString makes %#v readable in test failures.
func (v Value) GoString() string { return fmt.Sprintf("model.Value{%s %s}", v.kind, v.String()) }

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 bytes
// are replaced with U+FFFD so the output is always valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
