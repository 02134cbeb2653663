package model

import "strconv"

// QualityCode is the coarse quality of a sample, in the three classes that
// OPC UA status severities and Sparkplug qualities (192/0/500 in Ignition's
// usage) both map onto.
type QualityCode uint8

// Quality classes. Good is the zero value so that a freshly built sample is
// good unless a source says otherwise.
const (
	Good QualityCode = iota
	Uncertain
	Bad
)

func (q QualityCode) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// Quality is a QualityCode with the reason it is not good, such as the name
// of a Modbus exception or "device unreachable". Reasons should be constant
// strings or strings built once per failure, not per sample.
type Quality struct {
	Reason string
	Code   QualityCode
}

// Common reasons, shared so that consumers can match on them.
const (
	ReasonUnreachable = "device unreachable"
	ReasonTimeout     = "timeout"
	ReasonStale       = "stale"
)

// IsGood reports whether q is good.
func (q Quality) IsGood() bool { return q.Code == Good }

func (q Quality) String() string {
	if q.Reason == "" {
		return q.Code.String()
	}
	return q.Code.String() + ": " + q.Reason
}
