package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
)

func newTrail(t *testing.T, checkpoints bool, n int) (*audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{File: filepath.Join(dir, "audit", "audit.jsonl")}
	if checkpoints {
		cfg.CheckpointFile = filepath.Join(dir, "cp", "checkpoint.json")
		cfg.CheckpointEvery = 1
	}
	trail, err := audit.OpenWith(cfg, audit.Options{DataDir: dir, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	for i := range n {
		if _, err := trail.Append(audit.Entry{Time: time.Unix(1_700_000_000+int64(i), 0), Caller: "api:alice", Path: "plant/l1/speed",
			New: model.Int(int64(100 + i)), Result: audit.Allowed}); err != nil {
			t.Fatal(err)
		}
	}
	return trail, cfg.File
}

func getVerify(t *testing.T, av *AuditVerify) map[string]any {
	t.Helper()
	h := New(Options{Status: &fakeStatus{}, Extra: av.Mount}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/audit/verify", nil))
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	schemaCheck(t, "GET /api/v1/audit/verify", rec)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteLine replaces old by new in line n (1-based) of file.
func rewriteLine(t *testing.T, file string, n int, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if !bytes.Contains(lines[n-1], []byte(old)) {
		t.Fatalf("line %d has no %q: %s", n, old, lines[n-1])
	}
	lines[n-1] = bytes.Replace(lines[n-1], []byte(old), []byte(new), 1)
	if err := os.WriteFile(file, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyEndpoint(t *testing.T) {
	t.Run("intact with checkpoint", func(t *testing.T) {
		trail, _ := newTrail(t, true, 5)
		out := getVerify(t, &AuditVerify{Trail: trail})
		if out["ok"] != true || out["entries"] != 5.0 || out["first_bad_line"] != 0.0 {
			t.Fatalf("%v", out)
		}
		if cp, _ := out["checkpoint"].(map[string]any); cp == nil || cp["seq"] != 5.0 || cp["node"] != "n1" {
			t.Fatalf("checkpoint %v", out["checkpoint"])
		}
	})
	t.Run("intact without checkpoints says so", func(t *testing.T) {
		trail, _ := newTrail(t, false, 3)
		out := getVerify(t, &AuditVerify{Trail: trail})
		if out["ok"] != true || out["entries"] != 3.0 || !strings.Contains(anyString(out["notes"]), "checkpoints are off") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("changed entry names its line", func(t *testing.T) {
		trail, file := newTrail(t, true, 5)
		rewriteLine(t, file, 3, `"new":102`, `"new":999`)
		out := getVerify(t, &AuditVerify{Trail: trail})
		if out["ok"] != false || out["first_bad_line"] != 3.0 || out["entries"] != 2.0 || out["bad_file"] != "audit.jsonl" ||
			!strings.Contains(out["reason"].(string), "hash") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("entries cut off the end", func(t *testing.T) {
		trail, file := newTrail(t, true, 5)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		if err := os.WriteFile(file, bytes.Join(lines[:3], nil), 0o600); err != nil {
			t.Fatal(err)
		}
		out := getVerify(t, &AuditVerify{Trail: trail})
		if out["ok"] != false || out["first_bad_line"] != 0.0 || !strings.Contains(out["reason"].(string), "cut off its end") {
			t.Fatalf("%v", out)
		}
		if strings.Contains(out["reason"].(string), string(os.PathSeparator)+"audit"+string(os.PathSeparator)) {
			t.Fatalf("reason shows the server's directories: %s", out["reason"])
		}
	})
}

func anyString(v any) string { b, _ := json.Marshal(v); return string(b) }

// slowVerifier counts how many verifications run at once.
type slowVerifier struct {
	in, peak, calls atomic.Int64
	release         chan struct{}
}

func (s *slowVerifier) VerifyChain() (audit.SelfCheck, error) {
	s.calls.Add(1)
	n := s.in.Add(1)
	defer s.in.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-s.release
	return audit.SelfCheck{VerifyResult: audit.VerifyResult{Entries: 1}}, nil
}

// However many ask at once, one verification reads the trail at a time.
func TestAuditVerifyOneAtATime(t *testing.T) {
	sv := &slowVerifier{release: make(chan struct{})}
	h := New(Options{Status: &fakeStatus{}, Extra: (&AuditVerify{Trail: sv}).Mount}).Handler()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/audit/verify", nil))
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ok":true`) {
				t.Errorf("%d %s", rec.Code, rec.Body.String())
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute) // bounds a hang
	for sv.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
	close(sv.release)
	wg.Wait()
	if p := sv.peak.Load(); p != 1 {
		t.Fatalf("%d verifications ran at once, want 1", p)
	}
}
