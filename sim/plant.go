package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Quantum is the simulation's fixed time step. Step(dt) advances the model
// in whole quanta and carries the remainder over, so the state depends only
// on the total simulated time, not on how it was sliced: Step(time.Second)
// equals ten Step(100*time.Millisecond).
const Quantum = 100 * time.Millisecond

// State is the filling line's state machine.
type State uint16

// The line's states, as served in input register machine_state.
const (
	StateStopped State = 0
	StateRunning State = 1
	StateFault   State = 2
)

func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateRunning:
		return "running"
	case StateFault:
		return "fault"
	}
	return fmt.Sprintf("state(%d)", uint16(s))
}

// Fault codes, as served in input register fault_code.
const (
	FaultNone          = 0
	FaultMotorOverload = 1 // random
	FaultBottleJam     = 2 // random
	FaultVibration     = 3 // vibration above VibrationTrip, from wear
	FaultOverTemp      = 4 // product above OverTempTrip
)

// Limits of the writable setpoints; writes outside them are refused with
// Illegal Data Value.
const (
	SpeedMin, SpeedMax               = 60, 600   // bottles/min
	TempSetpointMin, TempSetpointMax = 20, 95    // °C
	FillVolumeMin, FillVolumeMax     = 100, 2000 // ml
)

// Alarm and trip thresholds.
const (
	VibrationAlarm = 7.1  // mm/s, ISO 10816 zone C boundary for a small machine
	VibrationTrip  = 11.0 // mm/s
	OverTempTrip   = 99.0 // °C
	HighTempMargin = 5.0  // °C above setpoint raises alarm_high_temp
	LowLevelAlarm  = 10.0 // %
)

// Process constants. The tank is a product buffer with an inline heater;
// numbers are chosen for a lively demo more than for thermodynamics.
const (
	ambientNominal = 22.0    // °C
	heatRate       = 0.5     // °C/s at full heater output
	heatLoss       = 0.004   // 1/s towards ambient
	heaterKp       = 0.3     // 1/°C
	heaterPowerW   = 30000.0 // W at full output
	tankCapacityMl = 20e6    // 20 m³
	refillMlPerS   = 25000.0 // 25 L/s of pre-heated product
	refillTemp     = 60.0    // °C
	refillOn       = 20.0    // % level opening the refill valve
	refillOff      = 80.0    // % level closing it
	speedRamp      = 100.0   // bottles/min per s
	speedStopRamp  = 300.0   // bottles/min per s on a fault stop
	density        = 1.04    // g/ml
	rejectTolerPct = 1.0     // % of target weight
	wattsPerAmp    = 589.0   // 400 V three-phase at cos φ 0.85
)

// PlantOptions tune a Plant. The zero value is a deterministic plant with
// seed 0, no random faults and faults that latch until reset.
type PlantOptions struct {
	Seed int64
	// FaultMTBF is the mean running time between random faults (motor
	// overload, bottle jam); 0 disables them.
	FaultMTBF time.Duration
	// AutoRestart, when > 0, plays an operator who resets a fault and
	// restarts the line this long after it tripped, so an unattended demo
	// keeps producing. 0 leaves faults latched until a client writes coil
	// fault_reset and then run_cmd.
	AutoRestart time.Duration
	// StartStopped starts the line stopped (run_cmd false) rather than
	// running.
	StartStopped bool
}

// DemoPlantOptions are the options of `weir sim` and the demo: a fault
// about every 20 minutes of running, cleared after 30 seconds.
func DemoPlantOptions(seed int64) PlantOptions {
	return PlantOptions{Seed: seed, FaultMTBF: 20 * time.Minute, AutoRestart: 30 * time.Second}
}

// state is everything the model knows. It is a plain value so a write can
// be applied to a copy and committed only if every part of it is valid.
type state struct {
	// Commands and setpoints (writable).
	runCmd       bool
	heaterEnable bool
	speedSP      float64 // bottles/min
	tempSP       float64 // °C
	fillVolume   float64 // ml
	batchID      string

	// Process.
	productName string
	mode        State
	faultCode   uint16
	faultAge    time.Duration
	speed       float64 // actual, bottles/min
	temp        float64 // true product temperature, °C
	tempMeas    float64 // measured, with sensor noise
	ambient     float64 // °C
	heater      float64 // output 0..1
	level       float64 // %
	refill      bool
	current     float64 // A
	vibration   float64 // mm/s
	wear        float64 // 0 = new; grows with running
	bottles     uint32
	bottleFrac  float64
	rejects     uint32
	lastWeight  float64 // g
	runHours    float64
	energyWh    float64
	elapsed     time.Duration
}

// Plant is a simulated bottle filling line served as one Modbus unit: a
// product tank with a heater following a setpoint, a filler whose motor
// current and vibration rise with speed and wear, a bottle counter, a
// checkweigher and a run/stop/fault state machine.
//
// It is safe for concurrent use: Step and writes take the write lock; reads
// copy from a register image refreshed after every Step and write, so they
// hold the read lock only for a copy.
type Plant struct {
	opts  PlantOptions
	specs []TagSpec // immutable
	binds []binding // parallel to specs, immutable
	ix    index     // immutable

	mu    sync.RWMutex
	rng   *rand.Rand
	st    state
	carry time.Duration
	img   image
}

// products are what the line may be filling; the seed picks one. The fill
// volume follows the bottle size.
var products = []struct {
	name string
	ml   float64
}{
	{"Orange Juice NFC 1.0 L PET", 1000},
	{"Apple Juice Cloudy 0.5 L PET", 500},
	{"Multivitamin Nectar 1.0 L PET", 1000},
	{"Iced Tea Peach 0.5 L PET", 500},
	{"Grape Juice Red 0.75 L PET", 750},
}

// NewPlant builds a plant whose initial state and noise follow from
// opts.Seed: the same seed and the same sequence of Step and write calls
// give the same register values.
func NewPlant(opts PlantOptions) *Plant {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed_f111))
	p := &Plant{opts: opts, rng: rng}
	p.specs, p.binds = plantMap()
	p.ix = newIndex(p.specs)
	p.img = newImage(p.specs)
	tempSP := 85.0
	prod := products[rng.IntN(len(products))]
	p.st = state{
		runCmd:       !opts.StartStopped,
		heaterEnable: true,
		speedSP:      400,
		tempSP:       tempSP,
		fillVolume:   prod.ml,
		productName:  prod.name,
		batchID:      fmt.Sprintf("LOT-%05d", rng.IntN(100000)),
		temp:         tempSP - 2*rng.Float64(),
		ambient:      ambientNominal + 2*rng.NormFloat64(),
		level:        40 + 40*rng.Float64(),
		wear:         0.2 * rng.Float64(),
		bottles:      uint32(rng.IntN(1_000_000)),
		runHours:     1000 + 20000*rng.Float64(),
		energyWh:     float64(1e6 + rng.IntN(50e6)),
		lastWeight:   prod.ml * density,
	}
	if p.st.runCmd {
		p.st.mode = StateRunning
		p.st.speed = p.st.speedSP
	}
	p.st.control()
	p.st.measure(rng)
	p.refreshLocked()
	return p
}

// Step advances the simulation clock by dt. The model moves in Quantum
// steps; a remainder is carried into the next call.
func (p *Plant) Step(dt time.Duration) {
	if dt <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.carry += dt
	for p.carry >= Quantum {
		p.carry -= Quantum
		p.quantum()
	}
	p.refreshLocked()
}

// State reports the line's state.
func (p *Plant) State() State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.mode
}

// Elapsed is the simulated time advanced so far, in whole quanta.
func (p *Plant) Elapsed() time.Duration {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.elapsed
}

// quantum advances the model by one Quantum. Called with mu held.
func (p *Plant) quantum() {
	const s = float64(Quantum) / float64(time.Second)
	st, rng := &p.st, p.rng

	// Ambient drifts slowly around its nominal value.
	st.ambient += 0.001*(ambientNominal-st.ambient)*s + 0.02*math.Sqrt(s)*rng.NormFloat64()

	p.stateMachine(s)

	// Speed ramps to the setpoint while running, to 0 otherwise.
	target, ramp := 0.0, speedRamp
	switch st.mode {
	case StateRunning:
		target = st.speedSP
	case StateFault:
		ramp = speedStopRamp
	}
	st.speed = approach(st.speed, target, ramp*s)

	// Bottles: count, weigh, reject.
	if st.speed > 0 {
		st.bottleFrac += st.speed / 60 * s
		n := math.Floor(st.bottleFrac)
		st.bottleFrac -= n
		target := st.fillVolume * density
		sigma := 1.0 + 4*st.wear
		for i := 0; i < int(n); i++ {
			st.bottles++ // wraps at 2^32 like the PLC counter it imitates
			st.lastWeight = target + sigma*rng.NormFloat64()
			if math.Abs(st.lastWeight-target) > target*rejectTolerPct/100 {
				st.rejects++
			}
		}
	}

	// Tank level and refill with pre-heated product.
	use := st.speed / 60 * st.fillVolume * s
	in := 0.0
	if st.level < refillOn {
		st.refill = true
	} else if st.level >= refillOff {
		st.refill = false
	}
	if st.refill {
		in = refillMlPerS * s
	}
	volume := math.Max(st.level, 1) / 100 * tankCapacityMl
	st.temp += (refillTemp - st.temp) * in / (volume + in)
	st.level = math.Max(0, math.Min(100, st.level+(in-use)/tankCapacityMl*100))

	st.control()
	st.temp += (st.heater*heatRate - (st.temp-st.ambient)*heatLoss) * s
	st.measure(rng)
	if st.speed > 0.5 {
		st.runHours += s / 3600
		st.wear += s / 3600 * st.speed / SpeedMax * 0.01
	}
	st.energyWh += (st.current*wattsPerAmp + st.heater*heaterPowerW) * s / 3600
	st.elapsed += Quantum
}

// control sets the heater output: feed-forward plus proportional control
// towards the setpoint.
func (st *state) control() {
	st.heater = 0
	if st.heaterEnable {
		ff := (st.tempSP - ambientNominal) * heatLoss / heatRate
		st.heater = math.Max(0, math.Min(1, ff+heaterKp*(st.tempSP-st.temp)))
	}
}

// measure updates the noisy measurements: product temperature, and motor
// current and vibration, which rise with speed and wear.
func (st *state) measure(rng *rand.Rand) {
	st.tempMeas = st.temp + 0.05*rng.NormFloat64()
	if st.speed > 0.5 {
		load := 0.8 + 0.2*st.fillVolume/500
		st.current = math.Max(0, 1.5+0.018*st.speed*(1+0.5*st.wear)*load+0.05*rng.NormFloat64())
		st.vibration = 0.4 + 0.006*st.speed*(1+3*st.wear) + 0.15*math.Abs(rng.NormFloat64())
	} else {
		st.current = 0
		st.vibration = 0.05 + 0.02*math.Abs(rng.NormFloat64())
	}
}

// stateMachine moves between stopped, running and fault. Called with mu held.
func (p *Plant) stateMachine(s float64) {
	st := &p.st
	if st.mode == StateFault {
		st.faultAge += Quantum
		if p.opts.AutoRestart > 0 && st.faultAge >= p.opts.AutoRestart && st.resetFault() {
			st.runCmd = true
		}
	}
	switch {
	case st.mode == StateStopped && st.runCmd:
		st.mode = StateRunning
	case st.mode == StateRunning && !st.runCmd:
		st.mode = StateStopped
	}
	switch {
	case st.temp > OverTempTrip:
		st.trip(FaultOverTemp)
	case st.mode != StateRunning:
	case st.vibration > VibrationTrip:
		st.trip(FaultVibration)
	case p.opts.FaultMTBF > 0 && p.rng.Float64() < s/p.opts.FaultMTBF.Seconds():
		st.trip(uint16(FaultMotorOverload + p.rng.IntN(2)))
	}
}

// trip latches a fault: the line stops and run_cmd drops, as a PLC's
// interlock would.
func (st *state) trip(code uint16) {
	if st.mode == StateFault {
		return
	}
	st.mode, st.faultCode, st.faultAge, st.runCmd = StateFault, code, 0, false
}

// resetFault clears a latched fault unless its cause persists, and reports
// whether it did.
func (st *state) resetFault() bool {
	if st.mode != StateFault {
		return true
	}
	if st.faultCode == FaultOverTemp && st.temp > OverTempTrip {
		return false
	}
	if st.faultCode == FaultVibration {
		// A worn filler gets serviced: maintenance resets the wear.
		st.wear = 0
	}
	st.mode, st.faultCode, st.faultAge = StateStopped, FaultNone, 0
	return true
}

func approach(x, target, maxDelta float64) float64 {
	switch {
	case x < target:
		return math.Min(target, x+maxDelta)
	case x > target:
		return math.Max(target, x-maxDelta)
	}
	return x
}
