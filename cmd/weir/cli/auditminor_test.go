package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// Verifying a keyed trail without its key says to pass the key when the
// very first entry fails; a change further on gets no such hint.
func TestAuditVerifyKeyedTrailHint(t *testing.T) {
	t.Setenv("WEIR_TEST_AUDIT_KEY", "a key of the chain, long enough")
	tests := []struct {
		name     string
		keyed    bool
		change   int // 1-based line to change; 0: none
		args     []string
		wantCode int
		want     string // in stderr; hint: whether the key hint is in it
		hint     bool
	}{
		{"keyed, no key", true, 0, nil, 1, "hash mismatch", true},
		{"keyed, key given", true, 0, []string{"-key-env", "WEIR_TEST_AUDIT_KEY"}, 0, "", false},
		{"plain, changed at line 2", false, 2, nil, 1, "line 2: hash mismatch", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "writes.jsonl")
			cfg := audit.Config{File: file}
			if tt.keyed {
				cfg.Key = conf.Secret{Env: "WEIR_TEST_AUDIT_KEY"}
			}
			l, err := audit.Open(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := l.Append(audit.Entry{Caller: "api:a", Path: "p", New: model.Int(int64(i)), Result: audit.Allowed}); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			if tt.change > 0 {
				data, _ := os.ReadFile(file)
				lines := strings.SplitAfter(string(data), "\n")
				lines[tt.change-1] = strings.Replace(lines[tt.change-1], `"new":1`, `"new":7`, 1)
				os.WriteFile(file, []byte(strings.Join(lines, "")), 0o600)
			}
			code, _, errOut := run(append(append([]string{"audit", "verify"}, tt.args...), file)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "-key-env NAME") != tt.hint {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}
