package audit

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

// A trail that failed to open refuses every entry with the reason, shows
// failed, and raises one problem saying what to do.
func TestUnavailableRefusesWithReason(t *testing.T) {
	r := newCPRig(t, 2)
	l := r.open(t)
	for range 4 {
		if _, err := l.Append(Entry{Caller: "api:a", Path: "p", Result: Allowed}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	data, _ := os.ReadFile(r.file)
	writeLines(t, r.file, strings.Split(string(data), "\n")[:2])
	_, err := OpenWith(r.cfg, r.opts)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("open: %v", err)
	}
	u := Unavailable(r.file, err, r.opts)
	if _, aerr := u.Append(Entry{Caller: "api:a", Path: "p", Result: Allowed}); !errors.Is(aerr, ErrTruncated) {
		t.Fatalf("append: %v", aerr)
	}
	if !errors.Is(u.Err(), ErrTruncated) {
		t.Fatalf("Err: %v", u.Err())
	}
	if st := u.Status(); st.State != pipeline.StateFailed || !strings.Contains(st.LastError, "truncated") {
		t.Fatalf("status %+v", st)
	}
	p := r.ev.of(security.AuditProblem)
	if len(p) != 1 || !strings.Contains(p[0].Detail, "every write to a device is refused") || !strings.Contains(p[0].Detail, "move the checkpoint file aside") {
		t.Fatalf("problems %+v", p)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
}
