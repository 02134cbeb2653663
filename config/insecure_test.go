package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/weir-edge/weir/internal/conf"
)

// Every secret in the configuration is sent to a peer by a block that
// describes its transport (conf.Transporter), so the insecure-transport
// rule judges it: a new connector with a password and no Transports
// method fails here. The audit key never leaves the machine.
func TestEverySecretHasATransport(t *testing.T) {
	exempt := map[string]bool{"audit.key": true}
	secrets := 0
	var walk func(typ reflect.Type, path string, covered bool, depth int)
	walk = func(typ reflect.Type, path string, covered bool, depth int) {
		typ = deref(typ)
		if depth > 12 {
			return
		}
		switch typ.Kind() {
		case reflect.Slice, reflect.Array:
			walk(typ.Elem(), path+"[]", covered, depth+1)
			return
		case reflect.Map:
			walk(typ.Elem(), path+".*", covered, depth+1)
			return
		case reflect.Struct:
		default:
			return
		}
		if typ == secretType {
			secrets++
			if !covered && !exempt[path] {
				t.Errorf("%s is a secret, but no block above it implements conf.Transporter", path)
			}
			return
		}
		covered = covered || typ.Implements(transporterType) || reflect.PointerTo(typ).Implements(transporterType)
		eachField(typ, func(name string, ft reflect.Type) bool {
			walk(ft, conf.JoinPath(path, name), covered, depth+1)
			return true
		})
	}
	walk(configType, "", false, 0)
	if secrets < 10 {
		t.Fatalf("found %d secrets; the walk no longer reaches the components", secrets)
	}
}

// Parse loads a file whose only problems are warnings (an insecure
// setting it allows), and InsecureWarnings lists them with their keys.
func TestInsecureWarningsLoad(t *testing.T) {
	text := strings.Replace(goodConfig, "sinks:\n", `sinks:
  - name: remote
    kafka: {brokers: ["k.plant.example:9092"], topic: t, sasl: {mechanism: plain, username: u, password: {env: P}}, allow_insecure: true}
`, 1)
	env := func(k string) (string, bool) { return "10.1.2.3:502", k == "PLC_ADDR" }
	cfg, err := Parse("w.yaml", []byte(text), env)
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.InsecureWarnings()
	if len(ws) != 1 || ws[0].Path != "sinks[0].kafka.sasl" || !conf.IsWarning(ws[0].Err) {
		t.Fatalf("InsecureWarnings = %v", ws)
	}
	stale := strings.Replace(text, `"k.plant.example:9092"], topic: t,`, `"k.plant.example:9092"], topic: t, tls: {enabled: true},`, 1)
	if cfg, err := Parse("w.yaml", []byte(stale), env); err != nil || len(cfg.InsecureWarnings()) != 0 {
		t.Fatalf("a stale allow_insecure: %v, %v", err, cfg.InsecureWarnings())
	}
	text = strings.Replace(text, ", allow_insecure: true", "", 1)
	if _, err := Parse("w.yaml", []byte(text), env); err == nil || !strings.Contains(err.Error(), "sinks[0].kafka.sasl: would be sent in plaintext") {
		t.Fatalf("without allow_insecure: %v", err)
	}
}
