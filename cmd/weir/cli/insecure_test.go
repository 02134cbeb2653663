package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// weir validate (offline too: the rule needs no I/O) refuses a password
// over plaintext to another machine, and prints the allowed one as a
// warning with its key.
func TestValidateInsecureTransport(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, url, extra string) string {
		doc := strings.Replace(validateDoc, "tcp://127.0.0.1:1883", url, 1)
		doc = strings.Replace(doc, "SECRET", pw, 1) + extra
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.yaml", "tcp://broker.plant.example:1883", "")
	allowed := write("allowed.yaml", "tcp://broker.plant.example:1883", "      allow_insecure: true\n")
	for _, offline := range []bool{false, true} {
		args := []string{"validate"}
		if offline {
			args = append(args, "-offline")
		}
		code, out, errOut := run(append(args, plain)...)
		if code != 1 || !strings.Contains(errOut, plain+":18: sinks[0].mqtt.password: would be sent in plaintext to broker broker.plant.example:1883") {
			t.Errorf("offline=%v plain: exit %d\nstdout: %s\nstderr: %s", offline, code, out, errOut)
		}
		code, out, errOut = run(append(args, allowed)...)
		if code != 0 || !strings.Contains(errOut, allowed+":18: sinks[0].mqtt.password: warning: is sent in plaintext") ||
			!strings.Contains(out, "1 warning") {
			t.Errorf("offline=%v allowed: exit %d\nstdout: %s\nstderr: %s", offline, code, out, errOut)
		}
	}
}
