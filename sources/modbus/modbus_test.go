package modbus

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, doc string) Config {
	t.Helper()
	return conftest.Decode[Config](t, doc)
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	s, err := New(c, nil)
	if err != nil {
		t.Fatalf("New(sample): %v", err)
	}
	tags := s.Tags()
	want := map[string]model.Kind{
		"acme/plant1/filling/line1/filler/temperature":   model.KindFloat,
		"acme/plant1/filling/line1/filler/bottles_total": model.KindUint,
		"acme/plant1/filling/line1/filler/speed":         model.KindFloat, // scaled int16
		"acme/plant1/filling/line1/filler/recipe":        model.KindString,
		"acme/plant1/filling/line1/filler/door_open":     model.KindBool,
		"acme/plant1/filling/line1/filler/running":       model.KindBool,
		"acme/plant1/filling/line1/filler/fault":         model.KindBool,
		"acme/plant1/filling/line1/packer/energy_kwh":    model.KindFloat,
	}
	if len(tags) != len(want) {
		t.Fatalf("Tags() = %d tags, want %d", len(tags), len(want))
	}
	for _, tag := range tags {
		k, ok := want[tag.Path]
		if !ok || k != tag.Kind {
			t.Errorf("tag %s kind %s, want %s (known %v)", tag.Path, tag.Kind, k, ok)
		}
	}
	if tags[0].Unit != "°C" || tags[0].Description == "" {
		t.Errorf("metadata lost: %+v", tags[0])
	}
	// Status before Run: every device stopped, planned requests known.
	st := s.Status()
	if len(st.Children) != 2 || st.Children[0].State != "stopped" {
		t.Fatalf("status before run: %+v", st)
	}
	// filler: group 1 = holding 0..20 in one request (gaps ≤ 8) + input 0; group 2 = coil + discrete.
	if got := st.Children[0].Gauges["requests_per_cycle"]; got != 4 {
		t.Errorf("filler requests_per_cycle = %v, want 4", got)
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte("devices:\n  - name: a\n    adress: x:1\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("misspelt key decoded without error")
	}
}

// minimal is a valid config relying on every default.
const minimal = `
devices:
  - name: d1
    address: 127.0.0.1:502
    groups:
      - interval: 1s
        tags:
          - {name: t, table: holding, address: 0, type: uint16}
`

func TestDefaults(t *testing.T) {
	c := decodeStrict(t, minimal)
	if err := c.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatal(err)
	}
	if c.Devices[0].UnitID != nil || c.Devices[0].Timeout != 0 {
		t.Error("New changed the caller's config")
	}
	c.setDefaults()
	d := c.Devices[0]
	if *d.UnitID != 1 || d.Timeout != time.Second || *d.Retries != 1 || *d.MaxGap != 8 || d.MaxRegs != 125 || d.MaxBits != 2000 {
		t.Errorf("defaults: %+v", d)
	}
}

func TestValidate(t *testing.T) {
	// Each case edits the first tag (or device) of minimal and expects
	// exactly these messages.
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"no devices", "devices: []", []string{"devices: at least one device is required"}},
		{"device fields", `
devices:
  - name: "bad name"
    address: nohost
    unit_id: 256
    timeout: -1s
    retries: -1
    max_gap: -1
    max_registers: 126
    max_bits: 2001
`, []string{
			`devices[0].name: "bad name" may contain only letters, digits, '_' and '-'`,
			`devices[0].address: has no port; did you mean nohost:502?`,
			"devices[0].unit_id: 256 is out of range 0..255",
			"devices[0].timeout: must not be negative",
			"devices[0].retries: -1 is out of range 0..10",
			"devices[0].max_gap: -1 is out of range 0..2000",
			"devices[0].max_registers: 126 is out of range 1..125",
			"devices[0].max_bits: 2001 is out of range 1..2000",
			"devices[0].groups: at least one group is required",
		}},
		{"missing name and address, bad port", `
devices:
  - address: ":502"
    groups: [{interval: 1s, tags: [{name: t, table: holding, address: 0, type: uint16}]}]
  - name: x
    groups: [{interval: 0s, tags: []}]
`, []string{
			"devices[0].name: is required",
			`devices[0].address: has no host (want host:port)`,
			"devices[1].address: is required (host:port)",
			"devices[1].groups[0].interval: must be greater than 0",
			"devices[1].groups[0].tags: at least one tag is required",
		}},
		{"duplicate device", `
devices:
  - {name: a, address: "h:1", namespace: n1, groups: [{interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}]}
  - {name: a, address: "h:1", namespace: n2, groups: [{interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}]}
`, []string{`devices[1].name: duplicate device name "a" (also devices[0])`}},
		{"duplicate path across devices", `
devices:
  - {name: a, address: "h:1", namespace: n, groups: [{interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}]}
  - {name: b, address: "h:1", namespace: n, groups: [{interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}]}
`, []string{`devices[1].groups[0].tags[0].name: tag path "n/t" is also used by devices[0].groups[0].tags[0]`}},
		{"duplicate tag name across groups", `
devices:
  - name: a
    address: "h:1"
    groups:
      - {interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}
      - {interval: 1s, tags: [{name: t, table: coil, address: 1, type: bool}]}
`, []string{`devices[0].groups[1].tags[0].name: duplicate tag name "t" (also groups[0].tags[0])`}},
		{"invalid path", `
devices:
  - {name: a, address: "h:1", namespace: "plant/+", groups: [{interval: 1s, tags: [{name: t, table: coil, address: 0, type: bool}]}]}
`, []string{`devices[0].groups[0].tags[0].name: tag path "plant/+/t" contains the MQTT wildcard '+'`}},
	}
	tagTests := []struct {
		name string
		tag  string
		want []string
	}{
		{"unknown table type order", `{name: t, table: hold, address: 0, type: word, order: XYZW}`, []string{
			`table: unknown table "hold" (want coil, discrete_input, holding or input)`,
			`type: unknown type "word" (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)`,
			`order: unknown order "XYZW" (want ABCD, CDAB, BADC or DCBA)`,
		}},
		{"name missing", `{table: holding, address: 0, type: uint16}`, []string{"name: is required"}},
		{"address negative", `{name: t, table: holding, address: -1, type: uint16}`, []string{
			"address: -1 is out of range 0..65535 (zero-based PDU address: 40001 is holding address 0)"}},
		{"address 40001 style too big", `{name: t, table: holding, address: 400001, type: uint16}`, []string{
			"address: 400001 is out of range 0..65535 (zero-based PDU address: 40001 is holding address 0)"}},
		{"address plus width", `{name: t, table: holding, address: 65533, type: float64}`, []string{
			"address: 65533 plus 4 registers runs past 65535"}},
		{"last register ok", `{name: t, table: holding, address: 65534, type: float32}`, nil},
		{"bool on register without bit", `{name: t, table: holding, address: 0, type: bool}`, []string{
			"type: bool on a holding register needs bit (0..15)"}},
		{"numeric on coil", `{name: t, table: coil, address: 0, type: int16}`, []string{
			"type: int16 cannot be read from the coil table (only bool)"}},
		{"numeric on discrete", `{name: t, table: discrete_input, address: 0, type: float32}`, []string{
			"type: float32 cannot be read from the discrete_input table (only bool)"}},
		{"bit on coil", `{name: t, table: coil, address: 0, type: bool, bit: 1}`, []string{
			"bit: applies only to type bool on a holding or input register"}},
		{"bit on int", `{name: t, table: input, address: 0, type: uint16, bit: 1}`, []string{
			"bit: applies only to type bool on a holding or input register"}},
		{"bit range", `{name: t, table: input, address: 0, type: bool, bit: 16}`, []string{"bit: 16 is out of range 0..15"}},
		{"string without length", `{name: t, table: holding, address: 0, type: string}`, []string{
			"length: string needs length (registers, 2 characters each) greater than 0"}},
		{"string too long", `{name: t, table: holding, address: 0, type: string, length: 126}`, []string{
			"length: 126 registers exceed max_registers 125"}},
		{"length on int", `{name: t, table: holding, address: 0, type: int32, length: 2}`, []string{
			"length: applies only to type string"}},
		{"order on bool", `{name: t, table: coil, address: 0, type: bool, order: DCBA}`, []string{
			"order: does not apply to type bool"}},
		{"word order on string", `{name: t, table: holding, address: 0, type: string, length: 2, order: CDAB}`, []string{
			"order: CDAB does not apply to strings (ABCD or BADC, which swaps the two characters of each register)"}},
		{"byte order on string ok", `{name: t, table: holding, address: 0, type: string, length: 2, order: BADC}`, nil},
		{"scale on bool", `{name: t, table: coil, address: 0, type: bool, scale: 2, offset: 1}`, []string{
			"scale: applies only to numeric types", "offset: applies only to numeric types"}},
		{"scale zero", `{name: t, table: holding, address: 0, type: int16, scale: 0}`, []string{"scale: must not be 0"}},
		{"offset alone ok", `{name: t, table: holding, address: 0, type: int16, offset: -273.15}`, nil},
	}
	for _, tt := range tagTests {
		tests = append(tests, struct {
			name string
			doc  string
			want []string
		}{"tag " + tt.name, strings.Replace(minimal, "{name: t, table: holding, address: 0, type: uint16}", tt.tag, 1),
			prefixAll("devices[0].groups[0].tags[0].", tt.want)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.doc)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate():\n got: %q\nwant: %q", got, tt.want)
			}
			if _, nerr := New(c, nil); (nerr == nil) != (err == nil) {
				t.Errorf("New error %v disagrees with Validate %v", nerr, err)
			}
		})
	}
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = p + s[i]
	}
	return out
}

func TestMaxRegistersTooSmallForType(t *testing.T) {
	doc := strings.Replace(minimal, "    groups:", "    max_registers: 2\n    groups:", 1)
	doc = strings.Replace(doc, "type: uint16", "type: float64", 1)
	c := decodeStrict(t, doc)
	want := "devices[0].groups[0].tags[0].type: float64 needs 4 registers, more than max_registers 2"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
