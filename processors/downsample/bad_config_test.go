package downsample

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigs checks every testdata/*.bad.yaml against the error its
// first line announces ("# want: ...").
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatal("first line must be '# want: <error>'")
			}
			c := decodeStrict(t, string(b))
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %q", err, want)
			}
		})
	}
}
