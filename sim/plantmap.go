package sim

import (
	"math"
	"strings"

	"github.com/simonvetter/modbus"
)

// binding ties a tag to the model: get reads the quantity in engineering
// units, set (nil for read-only tags) applies a written one to a copy of the
// state and refuses values outside the tag's limits.
type binding struct {
	kind valKind
	get  func(*state) val
	set  func(*state, val) error
}

func boolV(b bool) val          { return val{kind: vBool, b: b} }
func numV(f float64) val        { return val{kind: vNum, f: f} }
func uintV(u uint64) val        { return val{kind: vUint, u: u} }
func strV(s string) val         { return val{kind: vStr, s: s} }
func bitP(n int) *int           { return ptr(n) }
func scaleP(f float64) *float64 { return ptr(f) }

// ro builds a read-only binding.
func ro(kind valKind, get func(*state) val) binding { return binding{kind: kind, get: get} }

// bounded builds a setter for a numeric setpoint in [lo, hi]. Out-of-range
// and NaN writes are refused with Illegal Data Value, the usual PLC answer
// even though the spec reserves 03 for malformed requests.
func bounded(lo, hi float64, field func(*state) *float64) func(*state, val) error {
	return func(s *state, v val) error {
		if math.IsNaN(v.f) || v.f < lo || v.f > hi {
			return modbus.ErrIllegalDataValue
		}
		*field(s) = v.f
		return nil
	}
}

// plantMap is the filling line's register map: the single truth of what
// lives where. README.md shows it as a table; TestREADMEListsEveryTag keeps
// the two in step.
func plantMap() ([]TagSpec, []binding) {
	type entry struct {
		spec TagSpec
		bind binding
	}
	es := []entry{
		// Coils: commands.
		{TagSpec{Name: "run_cmd", Table: TableCoil, Address: 0, Type: TypeBool, Writable: true,
			Description: "Run command: true starts the line, false stops it; dropped by a fault and ignored while one is latched"},
			binding{kind: vBool, get: func(s *state) val { return boolV(s.runCmd) }, set: func(s *state, v val) error {
				if s.mode == StateFault {
					return nil // interlock: a start is ignored while faulted
				}
				s.runCmd = v.b
				if v.b {
					s.mode = StateRunning
				} else {
					s.mode = StateStopped
				}
				return nil
			}}},
		{TagSpec{Name: "heater_enable", Table: TableCoil, Address: 1, Type: TypeBool, Writable: true,
			Description: "Product heater enable"},
			binding{kind: vBool, get: func(s *state) val { return boolV(s.heaterEnable) }, set: func(s *state, v val) error {
				s.heaterEnable = v.b
				return nil
			}}},
		{TagSpec{Name: "fault_reset", Table: TableCoil, Address: 2, Type: TypeBool, Writable: true,
			Description: "Write true to reset a latched fault (momentary, reads false); the line stays stopped until run_cmd"},
			binding{kind: vBool, get: func(*state) val { return boolV(false) }, set: func(s *state, v val) error {
				if v.b {
					s.resetFault()
				}
				return nil
			}}},

		// Discrete inputs: alarms.
		{TagSpec{Name: "fault_active", Table: TableDiscrete, Address: 0, Type: TypeBool,
			Description: "A fault is latched (see fault_code)"},
			ro(vBool, func(s *state) val { return boolV(s.mode == StateFault) })},
		{TagSpec{Name: "alarm_high_temp", Table: TableDiscrete, Address: 1, Type: TypeBool,
			Description: "Product temperature more than 5 °C above setpoint"},
			ro(vBool, func(s *state) val { return boolV(s.tempMeas > s.tempSP+HighTempMargin) })},
		{TagSpec{Name: "alarm_high_vibration", Table: TableDiscrete, Address: 2, Type: TypeBool,
			Description: "Filler vibration above 7.1 mm/s"},
			ro(vBool, func(s *state) val { return boolV(s.vibration > VibrationAlarm) })},
		{TagSpec{Name: "alarm_low_level", Table: TableDiscrete, Address: 3, Type: TypeBool,
			Description: "Product tank below 10 %"},
			ro(vBool, func(s *state) val { return boolV(s.level < LowLevelAlarm) })},

		// Input registers: measurements.
		{TagSpec{Name: "product_temp", Table: TableInput, Address: 0, Type: TypeFloat32, Order: OrderABCD, Unit: "degC",
			Description: "Product temperature in the buffer tank"},
			ro(vNum, func(s *state) val { return numV(s.tempMeas) })},
		{TagSpec{Name: "motor_current", Table: TableInput, Address: 2, Type: TypeFloat32, Order: OrderCDAB, Unit: "A",
			Description: "Filler main drive current"},
			ro(vNum, func(s *state) val { return numV(s.current) })},
		{TagSpec{Name: "vibration", Table: TableInput, Address: 4, Type: TypeFloat32, Order: OrderBADC, Unit: "mm/s",
			Description: "Filler bearing vibration velocity (RMS)"},
			ro(vNum, func(s *state) val { return numV(s.vibration) })},
		{TagSpec{Name: "bottle_count", Table: TableInput, Address: 6, Type: TypeUint32, Order: OrderCDAB, Unit: "bottles",
			Description: "Bottles filled, total; wraps at 2^32"},
			ro(vUint, func(s *state) val { return uintV(uint64(s.bottles)) })},
		{TagSpec{Name: "reject_count", Table: TableInput, Address: 8, Type: TypeUint32, Order: OrderABCD, Unit: "bottles",
			Description: "Bottles rejected by the checkweigher, total"},
			ro(vUint, func(s *state) val { return uintV(uint64(s.rejects)) })},
		{TagSpec{Name: "line_speed", Table: TableInput, Address: 10, Type: TypeUint16, Scale: scaleP(0.1), Unit: "bottles/min",
			Description: "Actual line speed"},
			ro(vNum, func(s *state) val { return numV(s.speed) })},
		{TagSpec{Name: "temp_deviation", Table: TableInput, Address: 11, Type: TypeInt16, Scale: scaleP(0.01), Unit: "degC",
			Description: "Product temperature minus setpoint"},
			ro(vNum, func(s *state) val { return numV(s.tempMeas - s.tempSP) })},
		{TagSpec{Name: "status_running", Table: TableInput, Address: 12, Type: TypeBool, Bit: bitP(0),
			Description: "Status word bit 0: filler running"},
			ro(vBool, func(s *state) val { return boolV(s.mode == StateRunning) })},
		{TagSpec{Name: "status_heater_on", Table: TableInput, Address: 12, Type: TypeBool, Bit: bitP(1),
			Description: "Status word bit 1: heater output above 0"},
			ro(vBool, func(s *state) val { return boolV(s.heater > 0) })},
		{TagSpec{Name: "status_refill_open", Table: TableInput, Address: 12, Type: TypeBool, Bit: bitP(2),
			Description: "Status word bit 2: tank refill valve open"},
			ro(vBool, func(s *state) val { return boolV(s.refill) })},
		{TagSpec{Name: "status_ready", Table: TableInput, Address: 12, Type: TypeBool, Bit: bitP(3),
			Description: "Status word bit 3: no fault and product within 2 °C of setpoint"},
			ro(vBool, func(s *state) val { return boolV(s.mode != StateFault && math.Abs(s.tempMeas-s.tempSP) <= 2) })},
		{TagSpec{Name: "machine_state", Table: TableInput, Address: 13, Type: TypeUint16,
			Description: "0 stopped, 1 running, 2 fault"},
			ro(vNum, func(s *state) val { return numV(float64(s.mode)) })},
		{TagSpec{Name: "fault_code", Table: TableInput, Address: 14, Type: TypeUint16,
			Description: "0 none, 1 motor overload, 2 bottle jam, 3 vibration trip, 4 over-temperature"},
			ro(vNum, func(s *state) val { return numV(float64(s.faultCode)) })},
		{TagSpec{Name: "tank_level", Table: TableInput, Address: 15, Type: TypeUint16, Scale: scaleP(0.1), Unit: "%",
			Description: "Product buffer tank level"},
			ro(vNum, func(s *state) val { return numV(s.level) })},
		{TagSpec{Name: "fill_weight", Table: TableInput, Address: 16, Type: TypeInt32, Order: OrderDCBA, Scale: scaleP(0.01), Unit: "g",
			Description: "Gross weight of the last bottle at the checkweigher"},
			ro(vNum, func(s *state) val { return numV(s.lastWeight) })},
		{TagSpec{Name: "heater_output", Table: TableInput, Address: 18, Type: TypeUint16, Scale: scaleP(0.1), Unit: "%",
			Description: "Heater output"},
			ro(vNum, func(s *state) val { return numV(100 * s.heater) })},
		{TagSpec{Name: "ambient_temp", Table: TableInput, Address: 19, Type: TypeInt16, Scale: scaleP(0.1), Unit: "degC",
			Description: "Hall temperature"},
			ro(vNum, func(s *state) val { return numV(s.ambient) })},
		{TagSpec{Name: "run_hours", Table: TableInput, Address: 20, Type: TypeFloat64, Order: OrderABCD, Unit: "h",
			Description: "Filler running hours"},
			ro(vNum, func(s *state) val { return numV(s.runHours) })},
		{TagSpec{Name: "energy_total", Table: TableInput, Address: 24, Type: TypeUint64, Order: OrderABCD, Unit: "Wh",
			Description: "Energy used by drive and heater, total"},
			ro(vUint, func(s *state) val { return uintV(uint64(s.energyWh)) })},
		{TagSpec{Name: "uptime", Table: TableInput, Address: 28, Type: TypeInt64, Order: OrderCDAB, Unit: "ms",
			Description: "Simulated time since the simulator started"},
			ro(vNum, func(s *state) val { return numV(float64(s.elapsed.Milliseconds())) })},

		// Holding registers: setpoints and recipe.
		{TagSpec{Name: "speed_setpoint", Table: TableHolding, Address: 0, Type: TypeUint16, Unit: "bottles/min", Writable: true,
			Description: "Line speed setpoint, 60..600"},
			binding{kind: vNum, get: func(s *state) val { return numV(s.speedSP) },
				set: bounded(SpeedMin, SpeedMax, func(s *state) *float64 { return &s.speedSP })}},
		{TagSpec{Name: "temp_setpoint", Table: TableHolding, Address: 1, Type: TypeFloat32, Order: OrderABCD, Unit: "degC", Writable: true,
			Description: "Product temperature setpoint, 20..95"},
			binding{kind: vNum, get: func(s *state) val { return numV(s.tempSP) },
				set: bounded(TempSetpointMin, TempSetpointMax, func(s *state) *float64 { return &s.tempSP })}},
		{TagSpec{Name: "fill_volume", Table: TableHolding, Address: 3, Type: TypeFloat32, Order: OrderDCBA, Unit: "ml", Writable: true,
			Description: "Fill volume per bottle, 100..2000"},
			binding{kind: vNum, get: func(s *state) val { return numV(s.fillVolume) },
				set: bounded(FillVolumeMin, FillVolumeMax, func(s *state) *float64 { return &s.fillVolume })}},
		{TagSpec{Name: "batch_id", Table: TableHolding, Address: 10, Type: TypeString, Length: 8, Writable: true,
			Description: "Batch (lot) id, up to 16 printable ASCII characters, NUL padded"},
			binding{kind: vStr, get: func(s *state) val { return strV(s.batchID) }, set: setText(func(s *state) *string { return &s.batchID })}},
		{TagSpec{Name: "product_name", Table: TableHolding, Address: 20, Type: TypeString, Length: 16, Order: OrderBADC,
			Description: "Product being filled, up to 32 characters, byte-swapped (BADC), read-only"},
			ro(vStr, func(s *state) val { return strV(s.productName) })},
	}
	specs := make([]TagSpec, len(es))
	binds := make([]binding, len(es))
	for i, e := range es {
		specs[i], binds[i] = e.spec, e.bind
	}
	return specs, binds
}

// setText builds a setter for a string register block: NUL and space
// padding is trimmed; anything but printable ASCII is Illegal Data Value.
func setText(field func(*state) *string) func(*state, val) error {
	return func(s *state, v val) error {
		t := strings.TrimRight(v.s, "\x00 ")
		for i := 0; i < len(t); i++ {
			if t[i] < 0x20 || t[i] > 0x7e {
				return modbus.ErrIllegalDataValue
			}
		}
		*field(s) = t
		return nil
	}
}
