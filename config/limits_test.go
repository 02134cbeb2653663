package config

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// aliasBomb nests levels of nine aliases each: 9^levels values once
// expanded, from a few hundred bytes.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= levels; i++ {
		ref := "*a" + itoa(i-1)
		b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [" + strings.TrimSuffix(strings.Repeat(ref+", ", 9), ", ") + "]\n")
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// Hostile shapes are refused at the line that crosses a limit, in a
// sentence, before the index or the decoder follows an alias.
func TestLimits(t *testing.T) {
	deep := ""
	for i := 0; i <= MaxDepth; i++ {
		deep += strings.Repeat("  ", i) + "k" + itoa(i%10) + ":\n"
	}
	cases := []struct {
		name, doc, want string
	}{
		{"alias bomb", aliasBomb(7), "bomb.yaml:6: the configuration has more than 100000 keys, values and list items (each use of an alias counts its block again) (expanding the alias *a4)"},
		{"alias of a long value", "a: &a " + strings.Repeat("x", 100_000) + "\nb: [" + strings.TrimSuffix(strings.Repeat("*a, ", 11), ", ") + "]\n", "bomb.yaml:2: the configuration, each alias written out, holds more than 1024 KiB of keys and values (expanding the alias *a)"},
		{"deep nesting", deep, "bomb.yaml:33: blocks and lists are nested more than 32 levels deep"},
		{"deep flow", "a: " + strings.Repeat("[", 40) + strings.Repeat("]", 40), "bomb.yaml:1: blocks and lists are nested more than 32 levels deep"},
		{"long list", "a:\n" + strings.Repeat("  - 1\n", MaxListItems+1), "bomb.yaml:2: a list has 20001 items, more than the 20000 allowed"},
		{"many keys", "a:\n" + manyKeys(MaxKeys+1), "bomb.yaml:2: a block has 1001 keys, more than the 1000 allowed"},
		{"dense", "a: [" + strings.Repeat("1,", 2*MaxValues) + "1]", "bomb.yaml: the configuration is too dense: more than 200000 line breaks, commas, colons and dashes (a file holds at most 100000 keys, values and list items)"},
		{"too large", "# " + strings.Repeat("x", MaxFileSize), "bomb.yaml: the configuration is larger than 1024 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bomb.yaml", []byte(c.doc), noEnv)
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("  k" + itoa(i) + ": 1\n")
	}
	return b.String()
}

// An alias bomb costs what its bytes cost: counted in bytes allocated,
// which does not depend on the machine (before the limits: > 7 GB, > 2 min).
func TestAliasBombIsCheap(t *testing.T) {
	doc := []byte(aliasBomb(9))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Parse("bomb.yaml", doc, noEnv); err == nil {
		t.Fatal("alias bomb accepted")
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("parsing a %d-byte alias bomb allocated %d MiB", len(doc), got>>20)
	}
}

// The design target — 10,000 tags in one file, in the flow style weir
// bench and browse -snippet write — is within the limits: the pre-parse
// density bound once refused it although its values were well within
// MaxValues.
func TestTenThousandTagsFit(t *testing.T) {
	var b strings.Builder
	b.WriteString("node: {id: big}\nsources:\n  - name: plc\n    modbus:\n      devices:\n")
	for d := range 50 {
		b.WriteString("        - name: dev" + itoa(d) + "\n          address: 127.0.0.1:5020\n          namespace: line/dev" + itoa(d) + "\n          groups:\n            - interval: 1s\n              tags:\n")
		for tg := range 200 {
			b.WriteString("                - {name: r" + itoa(tg) + ", table: holding, address: " + itoa(tg) + ", type: uint16}\n")
		}
	}
	b.WriteString("sinks:\n  - name: uns\n    buffer: {type: memory}\n    mqtt: {url: mqtt://127.0.0.1:1883, client_id: big}\n")
	if _, err := Parse("big.yaml", []byte(b.String()), noEnv); err != nil {
		t.Fatalf("a 10,000-tag configuration was refused: %v", err)
	}
}
