package sparkplugb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Shorter names for the generated nested messages.
type (
	// Metric is one metric of a payload.
	Metric = Payload_Metric
	// PropertySet is a metric's properties (parallel keys and values).
	PropertySet = Payload_PropertySet
	// PropertyValue is one property value.
	PropertyValue = Payload_PropertyValue
	// MetaData is a metric's optional metadata.
	MetaData = Payload_MetaData
)

// Well-known names and values of the specification.
const (
	// Namespace is the first topic level of every Sparkplug B message.
	Namespace = "spBv1.0"
	// MetricBdSeq is the birth/death sequence metric of NBIRTH and NDEATH
	// (datatype Int64, value 0..255).
	MetricBdSeq = "bdSeq"
	// MetricRebirth is the node control metric a host writes true (NCMD)
	// to ask for NBIRTH + all DBIRTHs. It is in every NBIRTH, value false,
	// and never aliased.
	MetricRebirth = "Node Control/Rebirth"
	// MetricDeviceRebirth is the optional device-level rebirth control.
	MetricDeviceRebirth = "Device Control/Rebirth"
)

// Quality property convention (Ignition / Cirrus Link; not in the spec).
const (
	// QualityProperty is the metric property key carrying the quality as
	// an Int32.
	QualityProperty = "Quality"
	QualityBad      = int32(0)
	QualityGood     = int32(192)
	QualityStale    = int32(500)
)

// ErrUnsupported is returned for datatypes this package does not convert
// (DataSet, Template, PropertySet, PropertySetList, unknown values).
var ErrUnsupported = errors.New("sparkplugb: unsupported datatype")

// Encode serialises a payload to its protobuf wire form.
func Encode(p *Payload) ([]byte, error) {
	return AppendEncode(nil, p)
}

// AppendEncode appends the wire form of p to dst, so that hot paths can
// reuse a buffer.
func AppendEncode(dst []byte, p *Payload) ([]byte, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend(dst, p)
	if err != nil {
		return dst, fmt.Errorf("sparkplugb: encode: %w", err)
	}
	return b, nil
}

// Decode parses a payload. It checks the protobuf wire format only, not
// Sparkplug rules (that seq is present, datatypes are set in births, …).
func Decode(b []byte) (*Payload, error) {
	p := new(Payload)
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("sparkplugb: decode: %w", err)
	}
	return p, nil
}

// IsArray reports whether dt is one of the array datatypes (22–34).
func (x DataType) IsArray() bool { return x >= DataType_Int8Array && x <= DataType_DateTimeArray }

// Known reports whether dt is a datatype of the 3.0 enum other than Unknown.
func (x DataType) Known() bool { return x > DataType_Unknown && x <= DataType_DateTimeArray }

// NewPayload returns a payload with timestamp (ms UTC) and seq set.
func NewPayload(timestampMs uint64, seq uint64) *Payload {
	return &Payload{Timestamp: proto.Uint64(timestampMs), Seq: proto.Uint64(seq)}
}

// FindMetric returns the first metric of p named name, or nil.
func FindMetric(p *Payload, name string) *Metric {
	for _, m := range p.GetMetrics() {
		if m.GetName() == name {
			return m
		}
	}
	return nil
}

// Property returns the value of the property key of m, or nil.
func Property(m *Metric, key string) *PropertyValue {
	ps := m.GetProperties()
	if ps == nil {
		return nil
	}
	for i, k := range ps.GetKeys() {
		if k == key && i < len(ps.GetValues()) {
			return ps.GetValues()[i]
		}
	}
	return nil
}

// AddProperty appends key = value to m's properties.
func AddProperty(m *Metric, key string, value *PropertyValue) {
	if m.Properties == nil {
		m.Properties = &PropertySet{}
	}
	m.Properties.Keys = append(m.Properties.Keys, key)
	m.Properties.Values = append(m.Properties.Values, value)
}

// Int32Property builds an Int32 property value (the Quality convention).
func Int32Property(v int32) *PropertyValue {
	return &PropertyValue{
		Type:  proto.Uint32(uint32(DataType_Int32)),
		Value: &Payload_PropertyValue_IntValue{IntValue: uint32(v)},
	}
}

// UInt64Property builds a UInt64 property value.
func UInt64Property(v uint64) *PropertyValue {
	return &PropertyValue{
		Type:  proto.Uint32(uint32(DataType_UInt64)),
		Value: &Payload_PropertyValue_LongValue{LongValue: v},
	}
}

// StringProperty builds a String property value.
func StringProperty(v string) *PropertyValue {
	return &PropertyValue{
		Type:  proto.Uint32(uint32(DataType_String)),
		Value: &Payload_PropertyValue_StringValue{StringValue: v},
	}
}

// PropertyInt returns an integer property value as int64 (Int8..UInt64
// in either field), ok false when absent, null or not an integer.
func PropertyInt(v *PropertyValue) (int64, bool) {
	if v == nil || v.GetIsNull() {
		return 0, false
	}
	switch x := v.GetValue().(type) {
	case *Payload_PropertyValue_IntValue:
		switch DataType(v.GetType()) {
		case DataType_Int8:
			return int64(int8(x.IntValue)), true
		case DataType_Int16:
			return int64(int16(x.IntValue)), true
		case DataType_Int32:
			return int64(int32(x.IntValue)), true
		}
		return int64(x.IntValue), true
	case *Payload_PropertyValue_LongValue:
		return int64(x.LongValue), true
	}
	return 0, false
}
