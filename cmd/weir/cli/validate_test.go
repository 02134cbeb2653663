package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validateDoc = `sources:
  - name: plc
    modbus:
      devices:
        - name: filler
          address: 127.0.0.1:5020
          namespace: acme/plant1
          groups:
            - interval: 1s
              tags:
                - {name: speed, table: holding, address: 0, type: uint16}
sinks:
  - name: uns
    mqtt:
      url: tcp://127.0.0.1:1883
      client_id: edge-01
      username: edge-01
      password: {file: SECRET}
`

func writeValidateConfig(t *testing.T, dir, name, secret string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Replace(validateDoc, "SECRET", secret, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	if err := os.WriteFile(good, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open-pw")
	if err := os.WriteFile(open, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := writeValidateConfig(t, dir, "ok.yaml", good)
	warn := writeValidateConfig(t, dir, "warn.yaml", open)
	missing := writeValidateConfig(t, dir, "missing.yaml", filepath.Join(dir, "nope"))

	t.Run("positional files, flags anywhere", func(t *testing.T) {
		code, out, errOut := run("validate", ok, "-offline", missing)
		if code != 0 || strings.Count(out, ": ok (") != 2 || !strings.Contains(out, "offline: secrets, files and ${NAME} variables not checked") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
	t.Run("-c still accepted", func(t *testing.T) {
		if code, out, errOut := run("validate", "-c", ok); code != 0 || !strings.Contains(out, "ok.yaml: ok (") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
	t.Run("a warning exits 0 and is printed", func(t *testing.T) {
		code, out, errOut := run("validate", warn)
		wantWarn := warn + ":18: sinks[0].mqtt.password: warning: secret file " + open + " is accessible by other users (mode 0644)"
		if code != 0 || !strings.Contains(errOut, wantWarn) || !strings.Contains(out, "ok (node=(host name) sources=1 sinks=1), 1 warning") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
	t.Run("an error exits 1, every file is checked", func(t *testing.T) {
		code, out, errOut := run("validate", missing, ok)
		wantErr := missing + ":18: sinks[0].mqtt.password: secret file " + filepath.Join(dir, "nope") + " does not exist"
		if code != 1 || !strings.Contains(errOut, wantErr) || !strings.Contains(errOut, "weir validate: 1 error in "+missing+"\n") ||
			!strings.Contains(out, "ok.yaml: ok (") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
	t.Run("an unreadable file is an error", func(t *testing.T) {
		if code, _, errOut := run("validate", filepath.Join(dir, "absent.yaml")); code != 1 || !strings.Contains(errOut, "no such file") {
			t.Fatalf("exit %d, stderr: %s", code, errOut)
		}
	})
	t.Run("no file is a usage error with examples", func(t *testing.T) {
		if code, _, errOut := run("validate", "-offline"); code != 2 || !strings.Contains(errOut, "weir validate -offline site-a.yaml") {
			t.Fatalf("exit %d, stderr: %s", code, errOut)
		}
	})
}
