package opcua

import (
	"math"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/model"
)

// sample turns a DataValue of item it into a Sample. ok is false when the
// value is suppressed: a duplicate of the last one delivered (same source
// timestamp, status and value, as a resubscription after a reconnect
// delivers again) or, for monitored items, inside the deadband.
//
// Only the goroutine that owns the item calls it.
func (s *Source) sample(it *item, dv *ua.DataValue, now int64, monitored bool) (model.Sample, bool) {
	if dv == nil {
		dv = &ua.DataValue{Status: ua.StatusBadNoData}
	}
	status := dv.Status
	v, ok := toValue(dv.Value)
	q := qualityOf(status)
	if !ok {
		v = model.Value{}
		if q.Code != model.Bad {
			q = model.Quality{Code: model.Bad, Reason: reasonUnsupported}
		}
	}
	src, stamped := sourceTime(dv, now)
	if monitored {
		if it.seen && stamped && src == it.lastSrc && status == it.lastStatus && v.Equal(it.last) {
			s.ctr.duplicates.Add(1)
			return model.Sample{}, false
		}
		statusChanged := !it.seen || status != it.lastStatus
		if it.deadband != nil && !it.passDeadband(v, statusChanged) {
			s.ctr.deadbandDropped.Add(1)
			return model.Sample{}, false
		}
	}
	it.seen, it.last, it.lastSrc, it.lastStatus = true, v, src, status
	return model.Sample{Path: it.path, Value: v, Quality: q, SourceTime: src, EdgeTime: now}, true
}

// sourceTime is the source timestamp, else the server timestamp, else the
// time of receipt; stamped reports whether the server gave one.
func sourceTime(dv *ua.DataValue, now int64) (int64, bool) {
	switch {
	case isTime(dv.SourceTimestamp.UnixNano(), dv.SourceTimestamp.IsZero()):
		return dv.SourceTimestamp.UnixNano(), true
	case isTime(dv.ServerTimestamp.UnixNano(), dv.ServerTimestamp.IsZero()):
		return dv.ServerTimestamp.UnixNano(), true
	}
	return now, false
}

// isTime rejects the zero time and OPC UA's "no time" (1601-01-01, which
// some stacks send instead of omitting the field).
func isTime(ns int64, zero bool) bool {
	const year1700 = -8520336000 * 1e9
	return !zero && ns > year1700
}

// passDeadband applies the item's deadband in the client, with the
// formula of Part 8 §6.2 / Part 4 §7.22.2, so that servers that ignore
// the filter (and there are some) behave like those that honour it.
// Applied after a server-side filter it passes everything the server sent,
// because both compare with the last value reported. A status change
// always passes, as does the first value of a session (the server's
// initial value after (re)subscribing).
func (it *item) passDeadband(v model.Value, statusChanged bool) bool {
	if !it.dbActive || statusChanged {
		it.dbRef, it.dbActive = v, true
		return true
	}
	width := it.deadband.Value
	if it.deadband.Type == "percent" {
		if !it.hasEU {
			it.dbRef = v
			return true // no EURange, no percent deadband: deliver everything
		}
		width = it.deadband.Value / 100 * (it.euHigh - it.euLow)
	}
	if exceeds(it.dbRef, v, width) {
		it.dbRef = v
		return true
	}
	return false
}

// exceeds reports whether b differs from a by more than w: for numbers
// |a−b| > w, for arrays of equal length any element exceeding; a changed
// length or kind always exceeds, and non-numeric values exceed when they
// changed.
func exceeds(a, b model.Value, w float64) bool {
	if a.Kind() == model.KindArray && b.Kind() == model.KindArray {
		ea, eb := a.Elems(), b.Elems()
		if len(ea) != len(eb) {
			return true
		}
		for i := range ea {
			if exceeds(ea[i], eb[i], w) {
				return true
			}
		}
		return false
	}
	fa, ok1 := a.Float64()
	fb, ok2 := b.Float64()
	if !ok1 || !ok2 || a.Kind() != b.Kind() {
		return !a.Equal(b)
	}
	if math.IsNaN(fa) || math.IsNaN(fb) {
		return !a.Equal(b)
	}
	return math.Abs(fa-fb) > w
}
