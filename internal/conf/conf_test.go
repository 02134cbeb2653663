package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
