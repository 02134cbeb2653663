package bundle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/config"
)

// sinkWith is a site layer whose sink takes password pw.
func sinkWith(pw string) Layer {
	return site("sinks:\n  - name: uns\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, password: '" + pw + "'}\n")
}

// The whole path of a secret: sealed on the hub to the site's key,
// rendered, signed, verified and resolved on the site into a 0600 file
// the configuration names; the value is in no bundle and no config bytes.
func TestSealedRoundTrip(t *testing.T) {
	pub, priv, err := NewSiteKey()
	if err != nil {
		t.Fatal(err)
	}
	const value = "correct horse battery staple"
	sealed, err := Seal(pub, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render("s1", []Layer{base(""), sinkWith(sealed)})
	if err != nil {
		t.Fatal(err)
	}
	b := issue(t, signer(1), r, 1)
	if bytes.Contains(b.Encode(), []byte(value)) {
		t.Fatal("the value is in the bundle")
	}
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "fleet"), signer(1))
	secrets := &SiteSecrets{Dir: filepath.Join(dir, "secrets"), Public: pub, Private: priv}
	var effective []byte
	err = s.Apply(b, func(b *Bundle) error {
		var err error
		if effective, err = secrets.Resolve(b.Config); err != nil {
			return err
		}
		_, err = config.Parse("effective", effective, func(string) (string, bool) { return "", false })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(effective, []byte(value)) {
		t.Fatalf("the value is in the effective configuration:\n%s", effective)
	}
	path, ok := at(t, effective, "sinks[0].mqtt.password.file").(string)
	if !ok {
		t.Fatalf("password is not a file reference:\n%s", effective)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != value {
		t.Errorf("resolved file holds %q (%v), want the value", got, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("resolved file mode %v (%v), want 0600", fi.Mode(), err)
	}
}

func TestResolve(t *testing.T) {
	pub, priv, _ := NewSiteKey()
	otherPub, _, _ := NewSiteKey()
	sealedHere, _ := Seal(pub, []byte("v-sealed"))
	sealedThere, _ := Seal(otherPub, []byte("v-elsewhere"))
	tests := []struct {
		name    string
		ref     string
		file    string      // secrets file content; "" none
		mode    os.FileMode // of the secrets file
		env     map[string]string
		noKey   bool
		want    string // key under password: file or env
		wantVal string // the value behind it
		err     string
	}{
		{name: "secret from the secrets file", ref: "${secret:MQTT_PW}", file: "MQTT_PW: v-file\n", mode: 0o600,
			want: "file", wantVal: "v-file"},
		{name: "secrets file wins over the environment", ref: "${secret:MQTT_PW}", file: "MQTT_PW: v-file\n", mode: 0o600,
			env: map[string]string{"MQTT_PW": "v-env"}, want: "file", wantVal: "v-file"},
		{name: "secret from the environment", ref: "${secret:MQTT_PW}", env: map[string]string{"MQTT_PW": "v-env"},
			want: "env", wantVal: "MQTT_PW"},
		{name: "secret nowhere", ref: "${secret:MQTT_PW}", err: "${secret:MQTT_PW}: not in"},
		{name: "secrets file open to others", ref: "${secret:MQTT_PW}", file: "MQTT_PW: v-file\n", mode: 0o644,
			err: "open to other users"},
		{name: "malformed secrets file does not show values", ref: "${secret:MQTT_PW}", file: "MQTT_PW: [v-file\n", mode: 0o600,
			err: "not a block of NAME: value"},
		{name: "sealed", ref: sealedHere, want: "file", wantVal: "v-sealed"},
		{name: "sealed to another site", ref: sealedThere, err: "does not open with this site's key"},
		{name: "sealed without a site key", ref: sealedHere, noKey: true, err: "this site has no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Render("s1", []Layer{base(""), sinkWith(tt.ref)})
			if err != nil {
				t.Fatal(err)
			}
			ss := &SiteSecrets{Dir: filepath.Join(dir, "resolved"), File: filepath.Join(dir, "secrets.yaml"),
				Lookup: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, Public: pub, Private: priv}
			if tt.noKey {
				ss.Public, ss.Private = nil, nil
			}
			if tt.file != "" {
				if err := os.WriteFile(ss.File, []byte(tt.file), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(ss.File, tt.mode)
			}
			out, err := ss.Resolve(r.Config)
			if tt.err != "" {
				if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want ErrSecret with %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), "sinks[0].mqtt.password") {
					t.Errorf("error does not name the key: %v", err)
				}
				for _, v := range []string{"v-file", "v-env", "v-sealed", "v-elsewhere"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error shows a value: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := at(t, out, "sinks[0].mqtt.password."+tt.want).(string)
			if tt.want == "file" {
				got, err := os.ReadFile(ref)
				if err != nil || string(got) != tt.wantVal {
					t.Errorf("file %s holds %q (%v), want %q", ref, got, err, tt.wantVal)
				}
			} else if ref != tt.wantVal {
				t.Errorf("env reference %q, want %q", ref, tt.wantVal)
			}
		})
	}
}

// A configuration with no fleet reference is returned as signed.
func TestResolveNothing(t *testing.T) {
	r := rendered(t, "s1", "")
	out, err := (&SiteSecrets{}).Resolve(r.Config)
	if err != nil || !bytes.Equal(out, r.Config) {
		t.Errorf("got %v, changed: %v", err, !bytes.Equal(out, r.Config))
	}
}

func TestSealRefuses(t *testing.T) {
	pub, _, _ := NewSiteKey()
	if _, err := Seal(pub, make([]byte, MaxSealed)); !errors.Is(err, ErrSecret) {
		t.Errorf("oversized value sealed: %v", err)
	}
	for _, ref := range []string{"${sealed:not base64!}", "${sealed:AAAA}", "${secret:1BAD}", "${secret:}"} {
		if _, err := Render("s1", []Layer{base(""), sinkWith(ref)}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", ref, err)
		}
	}
}

// A secret a later version no longer uses does not stay on disk.
func TestPrune(t *testing.T) {
	pub, priv, _ := NewSiteKey()
	one, _ := Seal(pub, []byte("v-one"))
	two, _ := Seal(pub, []byte("v-two"))
	ss := &SiteSecrets{Dir: filepath.Join(t.TempDir(), "resolved"), Public: pub, Private: priv}
	resolve := func(ref string) []byte {
		r, err := Render("s1", []Layer{base(""), sinkWith(ref)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := ss.Resolve(r.Config)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := resolve(one)
	second := resolve(two)
	if n := len(dirNames(t, ss.Dir)); n != 2 {
		t.Fatalf("%d resolved files before pruning, want 2", n)
	}
	if err := ss.Prune(second); err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, ss.Dir)
	kept, _ := at(t, second, "sinks[0].mqtt.password.file").(string)
	if len(names) != 1 || names[0] != filepath.Base(kept) {
		t.Errorf("after pruning: %v, want only %s", names, filepath.Base(kept))
	}
	if old, _ := at(t, first, "sinks[0].mqtt.password.file").(string); old == kept {
		t.Error("two sealed values resolved to one file")
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
