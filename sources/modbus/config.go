package modbus

import (
	"errors"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// Defaults applied by setDefaults to keys left out of the configuration.
const (
	DefaultUnitID       = 1
	DefaultTimeout      = time.Second
	DefaultRetries      = 1
	DefaultMaxGap       = 8
	DefaultMaxRegisters = 125  // FC03/FC04 limit of the Modbus spec
	DefaultMaxBits      = 2000 // FC01/FC02 limit of the Modbus spec
)

// Config is the `modbus:` block of a source: the devices it polls.
type Config struct {
	Devices []DeviceConfig `yaml:"devices"`
	// Stagger spreads the devices' polls over each group's interval (device
	// i of n starts i/n of an interval after connecting) instead of polling
	// every device at the same instant; default true. Fifty devices read
	// every 200 ms then answer 4 ms apart rather than at once, which
	// flattens the load on the gateway, the network and the sinks — and
	// the latency of whatever queues behind a burst.
	Stagger *bool `yaml:"stagger"`
}

// DeviceConfig is one Modbus TCP server (PLC, gateway). Each device gets its
// own connection and goroutine, so devices never wait for each other.
//
// UnitID, Retries and MaxGap are pointers because their zero value is a
// meaningful setting (unit 0, no retries, contiguous only) distinct from
// "not given".
type DeviceConfig struct {
	Name      string        `yaml:"name"`
	Address   string        `yaml:"address"`
	UnitID    *int          `yaml:"unit_id"`
	Timeout   time.Duration `yaml:"timeout"`
	Retries   *int          `yaml:"retries"`
	MaxGap    *int          `yaml:"max_gap"`
	MaxRegs   int           `yaml:"max_registers"`
	MaxBits   int           `yaml:"max_bits"`
	Namespace string        `yaml:"namespace"`
	Groups    []GroupConfig `yaml:"groups"`
	// WriteMultiple makes writes use FC 15/16 even for one coil or
	// register, for devices that implement only those (see write.go).
	WriteMultiple bool `yaml:"write_multiple"`
}

// GroupConfig is a set of tags polled together at one interval. Each poll
// of a group produces one batch.
type GroupConfig struct {
	Interval time.Duration `yaml:"interval"`
	Tags     []TagConfig   `yaml:"tags"`
}

// TagConfig describes where a value lives in the device and how to decode it.
//
// Address is the zero-based PDU address of the table named by Table: the
// "40001" of legacy notation is holding register address 0, "30001" is input
// register 0, "00001" coil 0 and "10001" discrete input 0.
type TagConfig struct {
	Name    string `yaml:"name"`
	Table   string `yaml:"table"`
	Address int    `yaml:"address"`
	Type    string `yaml:"type"`
	Order   string `yaml:"order"`
	// Bit selects one bit (0 = least significant) of a register for a bool.
	Bit *int `yaml:"bit"`
	// Length is the number of registers of a string (2 bytes each).
	Length int `yaml:"length"`
	// Scale and Offset turn the raw value into raw*scale+offset; either one
	// being set makes the tag's value a float.
	Scale       *float64 `yaml:"scale"`
	Offset      *float64 `yaml:"offset"`
	Unit        string   `yaml:"unit"`
	Description string   `yaml:"description"`
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// setDefaults fills every key left out; it is the one place defaults live.
func (c *Config) setDefaults() {
	for i := range c.Devices {
		d := &c.Devices[i]
		u, r, g := intOr(d.UnitID, DefaultUnitID), intOr(d.Retries, DefaultRetries), intOr(d.MaxGap, DefaultMaxGap)
		d.UnitID, d.Retries, d.MaxGap = &u, &r, &g
		if d.Timeout == 0 {
			d.Timeout = DefaultTimeout
		}
		d.MaxRegs = orDefault(d.MaxRegs, DefaultMaxRegisters)
		d.MaxBits = orDefault(d.MaxBits, DefaultMaxBits)
		for j := range d.Groups {
			for k := range d.Groups[j].Tags {
				if d.Groups[j].Tags[k].Order == "" {
					d.Groups[j].Tags[k].Order = "ABCD"
				}
			}
		}
	}
}

// Validate checks the configuration as written (no I/O) and reports every
// problem, each at its key path.
func (c *Config) Validate() error {
	var errs conf.Errors
	if len(c.Devices) == 0 {
		errs.Addf("devices", "at least one device is required")
	}
	names := map[string]int{}
	paths := map[string]string{}
	for i := range c.Devices {
		d := &c.Devices[i]
		key := conf.Index("devices", i)
		if prev, dup := names[d.Name]; dup && d.Name != "" {
			errs.Addf(key+".name", "duplicate device name %q (also devices[%d])", d.Name, prev)
		} else {
			names[d.Name] = i
		}
		errs.AddPrefixed(key, d.validate(paths, key))
	}
	return errs.Err()
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validate checks one device. paths collects full tag paths across devices
// (keyed by path, valued by the key of the first tag using it) so that two
// devices sharing a namespace cannot publish the same path.
func (d *DeviceConfig) validate(paths map[string]string, devKey string) error {
	var errs conf.Errors
	switch {
	case d.Name == "":
		errs.Addf("name", "is required")
	case !validName(d.Name):
		errs.Addf("name", "%q may contain only letters, digits, '_' and '-'", d.Name)
	}
	if d.Address == "" {
		errs.Addf("address", "is required (host:port)")
	} else if err := conf.CheckHostPort(d.Address, "502"); err != nil {
		errs.Add(&conf.FieldError{Path: "address", Err: err})
	}
	if u := intOr(d.UnitID, DefaultUnitID); u < 0 || u > 255 {
		errs.Addf("unit_id", "%d is out of range 0..255", u)
	}
	if d.Timeout < 0 {
		errs.Addf("timeout", "must not be negative")
	}
	if r := intOr(d.Retries, DefaultRetries); r < 0 || r > 10 {
		errs.Addf("retries", "%d is out of range 0..10", r)
	}
	if g := intOr(d.MaxGap, DefaultMaxGap); g < 0 || g > 2000 {
		errs.Addf("max_gap", "%d is out of range 0..2000", g)
	}
	maxRegs, maxBits := orDefault(d.MaxRegs, DefaultMaxRegisters), orDefault(d.MaxBits, DefaultMaxBits)
	if maxRegs < 1 || maxRegs > 125 {
		errs.Addf("max_registers", "%d is out of range 1..125", d.MaxRegs)
	}
	if maxBits < 1 || maxBits > 2000 {
		errs.Addf("max_bits", "%d is out of range 1..2000", d.MaxBits)
	}
	if len(d.Groups) == 0 {
		errs.Addf("groups", "at least one group is required")
	}
	tagNames := map[string]string{}
	for gi := range d.Groups {
		g := &d.Groups[gi]
		gKey := conf.Index("groups", gi)
		if g.Interval <= 0 {
			errs.Addf(gKey+".interval", "must be greater than 0")
		}
		if len(g.Tags) == 0 {
			errs.Addf(gKey+".tags", "at least one tag is required")
		}
		for ti := range g.Tags {
			t := &g.Tags[ti]
			tKey := conf.JoinPath(gKey, conf.Index("tags", ti))
			if prev, dup := tagNames[t.Name]; dup && t.Name != "" {
				errs.Addf(tKey+".name", "duplicate tag name %q (also %s)", t.Name, prev)
				continue
			}
			tagNames[t.Name] = tKey
			errs.AddPrefixed(tKey, t.validate(maxRegs, maxBits))
			if t.Name == "" {
				continue
			}
			p := tagPath(d.Namespace, t.Name)
			if err := model.ValidatePath(p); err != nil {
				errs.Addf(tKey+".name", "%w", err)
			} else if prev, dup := paths[p]; dup {
				errs.Addf(tKey+".name", "tag path %q is also used by %s", p, prev)
			} else {
				paths[p] = conf.JoinPath(devKey, tKey)
			}
		}
	}
	return errs.Err()
}

// tagPath is the tag's full path in the namespace.
func tagPath(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

var errNoScale = errors.New("applies only to numeric types")

// validate checks one tag against the device's request caps.
func (t *TagConfig) validate(maxRegs, maxBits int) error {
	var errs conf.Errors
	if t.Name == "" {
		errs.Addf("name", "is required")
	}
	tbl, tblOK := parseTable(t.Table)
	if !tblOK {
		errs.Addf("table", "unknown table %q (want coil, discrete_input, holding or input)", t.Table)
	}
	typ, typOK := parseType(t.Type)
	if !typOK {
		errs.Addf("type", "unknown type %q (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)", t.Type)
	}
	ord, ordOK := parseOrder(t.Order)
	if !ordOK {
		errs.Addf("order", "unknown order %q (want ABCD, CDAB, BADC or DCBA)", t.Order)
	}
	if t.Address < 0 || t.Address > 65535 {
		errs.Addf("address", "%d is out of range 0..65535 (zero-based PDU address: 40001 is holding address 0)", t.Address)
	}
	if !tblOK || !typOK {
		return errs.Err()
	}
	bitTable := tbl.isBits()
	switch {
	case typ == typeBool && !bitTable && t.Bit == nil:
		errs.Addf("type", "bool on a %s register needs bit (0..15)", t.Table)
	case typ != typeBool && bitTable:
		errs.Addf("type", "%s cannot be read from the %s table (only bool)", t.Type, t.Table)
	}
	if t.Bit != nil {
		switch {
		case typ != typeBool || bitTable:
			errs.Addf("bit", "applies only to type bool on a holding or input register")
		case *t.Bit < 0 || *t.Bit > 15:
			errs.Addf("bit", "%d is out of range 0..15", *t.Bit)
		}
	}
	if typ == typeString {
		switch {
		case t.Length <= 0:
			errs.Addf("length", "string needs length (registers, 2 characters each) greater than 0")
		case t.Length > maxRegs:
			errs.Addf("length", "%d registers exceed max_registers %d", t.Length, maxRegs)
		}
	} else if t.Length != 0 {
		errs.Addf("length", "applies only to type string")
	}
	if ordOK && ord != orderABCD {
		switch {
		case typ == typeBool:
			errs.Addf("order", "does not apply to type bool")
		case typ == typeString && ord != orderBADC:
			errs.Addf("order", "%s does not apply to strings (ABCD or BADC, which swaps the two characters of each register)", t.Order)
		}
	}
	if typ == typeBool || typ == typeString {
		if t.Scale != nil {
			errs.Addf("scale", "%w", errNoScale)
		}
		if t.Offset != nil {
			errs.Addf("offset", "%w", errNoScale)
		}
	}
	if t.Scale != nil && *t.Scale == 0 {
		errs.Addf("scale", "must not be 0")
	}
	width := typ.width(t.Length)
	limit := maxRegs
	if bitTable {
		limit = maxBits
	}
	if t.Address >= 0 && t.Address <= 65535 && t.Address+width > 65536 {
		errs.Addf("address", "%d plus %d %s runs past 65535", t.Address, width, tbl.unit())
	}
	if width > limit && typ != typeString {
		errs.Addf("type", "%s needs %d registers, more than max_registers %d", t.Type, width, limit)
	}
	return errs.Err()
}
