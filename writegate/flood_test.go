package writegate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
)

// TestReasonFloodKeepsHistory: thousands of denied writes with 60 KB
// reasons, from many callers, into a trail with tiny files and max_files
// 2, neither delete entries the last checkpoint does not cover nor push
// the operator's entries out: reasons are capped, each caller's refusals
// beyond its budget are summarised, and rotation holds uncovered files.
func TestReasonFloodKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit", "writes.jsonl")
	cpFile := filepath.Join(dir, "cp", "checkpoint.json")
	trail, err := audit.OpenWith(audit.Config{File: file, MaxBytes: audit.MinMaxBytes, MaxFiles: 2,
		CheckpointFile: cpFile, CheckpointEvery: 50}, audit.Options{DataDir: dir, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	g, err := New(Config{Policies: testPolicies.Policies, Limits: Limits{PerCaller: "5/min"}}, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)}
	g.SetClock(clk.now)
	w := &fakeWriter{old: model.Int(1)}
	g.Register("acme/plant1/filling", w)
	ctx := context.Background()
	op := Request{Path: speed, Value: model.Int(300), Caller: "api:operator", IssuedAt: clk.now(), Reason: "batch 42"}
	first, err := g.Write(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	reason := strings.Repeat("A", 60<<10)
	const callers, perCaller = 20, 200
	for i := range callers * perCaller {
		g.Write(ctx, Request{Path: speed, Value: model.Int(9999), Caller: fmt.Sprintf("mqtt:flood%d", i%callers),
			IssuedAt: clk.now(), Reason: reason})
	}
	if _, err := g.Write(ctx, op); err != nil {
		t.Fatalf("operator's write after the flood: %v", err)
	}
	clk.advance(SummaryWindow)
	g.FlushRefusals(false)
	cp, err := audit.ReadCheckpointFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.VerifyTrail(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 4000 attempts: per caller 5 audited denials, 1 audited refusal and
	// 1 summary, + the operator's two writes.
	if want := uint64(callers*7 + 2); res.LastSeq != want {
		t.Fatalf("trail holds %d entries, want %d", res.LastSeq, want)
	}
	if res.FirstSeq > cp.Seq+1 {
		t.Fatalf("entries %d..%d, after the checkpoint at %d, were deleted", cp.Seq+1, res.FirstSeq-1, cp.Seq)
	}
	var size int64
	files, _ := filepath.Glob(filepath.Join(dir, "audit", "*"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	t.Logf("%d attempts with 60 KB reasons: %d entries, %d bytes in %d files (checkpoint at %d, %d files held beyond max_files)",
		callers*perCaller, res.LastSeq, size, len(files), cp.Seq, trail.Stats().HeldFiles)
	if first.Seq != 1 || trail.Stats().HeldFiles == 0 {
		t.Fatalf("first entry %d, stats %+v", first.Seq, trail.Stats())
	}
}
