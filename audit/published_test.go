package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weir-edge/weir/security"
)

// offerer is an event stream that takes events only while open is set.
type offerer struct {
	events
	open atomic.Bool
}

func (o *offerer) Offer(ctx context.Context, ev security.Event) bool {
	if !o.open.Load() {
		return false
	}
	o.Record(ctx, ev)
	return true
}

// A checkpoint counts as published only when it reached the checkpoint
// file and the event stream took it: until then rotation deletes nothing
// it would cover, one problem says why, and checkpoints keep their pace
// (not one per entry).
func TestUnpublishedCheckpointKeepsFiles(t *testing.T) {
	tests := []struct {
		name  string
		block func(t *testing.T, r *cpRig, o *offerer) // makes publishing fail
		want  string                                   // in a problem
	}{
		{"stream refuses", func(_ *testing.T, _ *cpRig, o *offerer) { o.open.Store(false) }, "not published: the security event stream did not take it"},
		{"file not written", func(t *testing.T, r *cpRig, _ *offerer) {
			// A non-empty directory where the file goes: the rename fails.
			if err := os.Remove(r.cpFile); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(r.cpFile, "x"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint file not written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCPRig(t, 10)
			o := &offerer{}
			o.open.Store(true)
			r.opts.Events = o
			r.cfg.MaxBytes, r.cfg.MaxFiles = MinMaxBytes, 1
			l := r.open(t)
			tt.block(t, r, o)
			reason := strings.Repeat("x", 2<<10)
			add := func(from, n int) {
				for i := from; i < from+n; i++ {
					e := entry(i)
					e.Result, e.Reason = Denied, reason
					if _, err := l.Append(e); err != nil {
						t.Fatal(err)
					}
				}
			}
			add(0, 60)
			res, err := VerifyTrail(r.file, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if res.FirstSeq != 1 || st.HeldFiles == 0 {
				t.Fatalf("entries from seq 1 on were never published, yet the trail starts at %d (held %d)", res.FirstSeq, st.HeldFiles)
			}
			if st.Checkpoints != 1+6 {
				t.Fatalf("%d checkpoints, want 7 (at Open and every 10 entries)", st.Checkpoints)
			}
			found := 0
			for _, p := range o.of(security.AuditProblem) {
				if strings.Contains(p.Detail, tt.want) {
					found++
				}
			}
			if found == 0 {
				t.Fatalf("no problem %q: %+v", tt.want, o.of(security.AuditProblem))
			}
			// Publishing works again: the next checkpoint lets rotation
			// delete what it covers.
			o.open.Store(true)
			os.RemoveAll(r.cpFile)
			add(60, 13) // a checkpoint at 70, then rotations prune
			if res, err = VerifyTrail(r.file, nil); err != nil || res.FirstSeq == 1 {
				t.Fatalf("after a published checkpoint the trail still starts at %d: %v", res.FirstSeq, err)
			}
		})
	}
}
