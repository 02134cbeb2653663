package conf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/weir-edge/weir/pipeline"
)

func TestErrorsPrefixAndFlatten(t *testing.T) {
	var child Errors
	child.Addf("address", "is required")
	child.Add(errors.Join(Errorf("tags[0].type", "unknown"), errors.New("plain")))

	var parent Errors
	parent.AddPrefixed("devices[2]", child.Err())
	parent.Add(nil)
	err := parent.Err()
	want := []string{
		"devices[2].address: is required",
		"devices[2].tags[0].type: unknown",
		"devices[2]: plain",
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "devices[2].address" {
		t.Fatalf("first FieldError = %+v", fe)
	}
}

func TestJoinPath(t *testing.T) {
	tests := map[string][]string{
		"a.b":       {"a", "b"},
		"a[1].b":    {"a", "[1]", "b"},
		"tags[3]":   {"", Index("tags", 3)},
		"x":         {"x", ""},
		"s[0].m[2]": {Index("s", 0), Index("m", 2)},
	}
	for want, parts := range tests {
		if got := JoinPath(parts...); got != want {
			t.Errorf("JoinPath(%q) = %q, want %q", parts, got, want)
		}
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEIR_TEST_SECRET", "from-env")
	tests := []struct {
		name    string
		s       Secret
		want    string
		wantErr string
	}{
		{"env", Secret{Env: "WEIR_TEST_SECRET"}, "from-env", ""},
		{"file trims newline", Secret{File: file}, "s3cret", ""},
		{"unset", Secret{}, "", ""},
		{"missing env", Secret{Env: "WEIR_TEST_SURELY_UNSET"}, "", "WEIR_TEST_SURELY_UNSET is not set"},
		{"missing file", Secret{File: filepath.Join(dir, "nope")}, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v", got, err)
			}
			if strings.Contains(tt.s.String(), got) && got != "" {
				t.Fatalf("String() %q reveals the value", tt.s.String())
			}
		})
	}
	if (Secret{Env: "A", File: "b"}).Validate() == nil {
		t.Fatal("both env and file accepted")
	}
}

// A secret that cannot be read will not appear by retrying: the engine must
// see pipeline.ErrPermanent, and the message must stay the same.
func TestResolveErrorsArePermanent(t *testing.T) {
	for _, s := range []Secret{{Env: "WEIR_TEST_SURELY_UNSET"}, {File: filepath.Join(t.TempDir(), "nope")}} {
		_, err := s.Resolve()
		if !errors.Is(err, pipeline.ErrPermanent) {
			t.Errorf("%s: err = %v, not ErrPermanent", s, err)
		}
		if strings.Contains(err.Error(), "permanent") {
			t.Errorf("%s: message changed: %v", s, err)
		}
	}
}

func TestSecretCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "s3cret\n", 0o600)
	empty := write("empty", "\n", 0o600)
	open := write("open", "s3cret", 0o644)
	t.Setenv("WEIR_TEST_SECRET", "x")
	t.Setenv("WEIR_TEST_EMPTY", "")
	tests := []struct {
		name    string
		s       Secret
		want    string // "" means no problem
		warning bool
	}{
		{"env set", Secret{Env: "WEIR_TEST_SECRET"}, "", false},
		{"env missing", Secret{Env: "WEIR_TEST_SURELY_UNSET"}, "environment variable WEIR_TEST_SURELY_UNSET is not set", false},
		{"env empty", Secret{Env: "WEIR_TEST_EMPTY"}, "environment variable WEIR_TEST_EMPTY is empty", false},
		{"file good", Secret{File: good}, "", false},
		{"file missing", Secret{File: dir + "/nope"}, "secret file " + dir + "/nope does not exist", false},
		{"file is a directory", Secret{File: dir}, "secret file " + dir + " is a directory", false},
		{"file empty", Secret{File: empty}, "secret file " + empty + " is empty", false},
		{"file too open", Secret{File: open}, "secret file " + open + " is accessible by other users (mode 0644); make it private with chmod 600", true},
		{"unset", Secret{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.warning && runtime.GOOS == "windows" {
				t.Skip("no mode bits")
			}
			err := tt.s.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Check = %v\nwant %s", err, tt.want)
			}
			if IsWarning(err) != tt.warning {
				t.Fatalf("IsWarning = %v, want %v", IsWarning(err), tt.warning)
			}
		})
	}
}

func TestSecretCheckUnreadable(t *testing.T) {
	if os.Geteuid() == 0 || runtime.GOOS == "windows" {
		t.Skip("root reads any file")
	}
	p := filepath.Join(t.TempDir(), "locked")
	if err := os.WriteFile(p, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	want := "secret file " + p + " cannot be read by this user (permission denied)"
	if err := (Secret{File: p}).Check(); err == nil || err.Error() != want {
		t.Fatalf("Check = %v, want %s", err, want)
	}
}
