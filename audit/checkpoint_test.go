package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

// events collects what a Log publishes.
type events struct {
	mu  sync.Mutex
	evs []security.Event
}

func (e *events) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) of(k security.Kind) []security.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []security.Event
	for _, ev := range e.evs {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// cpRig opens a trail with checkpoints in a fresh directory.
type cpRig struct {
	dir, file, cpFile string
	cfg               Config
	opts              Options
	ev                *events
}

func newCPRig(t *testing.T, every int) *cpRig {
	t.Helper()
	dir := t.TempDir()
	r := &cpRig{dir: dir, file: filepath.Join(dir, "audit", "writes.jsonl"), cpFile: filepath.Join(dir, "cp", "checkpoint.json"), ev: &events{}}
	r.cfg = Config{File: r.file, CheckpointFile: r.cpFile, CheckpointEvery: every}
	r.opts = Options{Events: r.ev, Node: "node-1", DataDir: dir}
	return r
}

func (r *cpRig) open(t *testing.T) *Log {
	t.Helper()
	l, err := OpenWith(r.cfg, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (r *cpRig) pub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, _, err := LoadSigningKey(conf.Secret{}, filepath.Join(r.dir, GeneratedKeyName))
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

func TestCheckpointSignature(t *testing.T) {
	_, k1, _ := ed25519.GenerateKey(nil)
	_, k2, _ := ed25519.GenerateKey(nil)
	cp := Checkpoint{Node: "n", Seq: 7, Hash: strings.Repeat("a", 64), Time: t0}
	cp.Sign(k1)
	back, err := ParseCheckpoint(cp.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(k1.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Checkpoint)
		pub  ed25519.PrivateKey
		want string
	}{
		{"seq changed", func(c *Checkpoint) { c.Seq = 9 }, k1, "changed after it was signed"},
		{"hash changed", func(c *Checkpoint) { c.Hash = strings.Repeat("b", 64) }, k1, "changed after it was signed"},
		{"node changed", func(c *Checkpoint) { c.Node = "m" }, k1, "changed after it was signed"},
		{"time changed", func(c *Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) }, k1, "changed after it was signed"},
		{"other key", func(*Checkpoint) {}, k2, "signed by ed25519:"},
		{"re-signed by another key", func(c *Checkpoint) { c.Sign(k2) }, k1, "not by the key given"},
		{"garbage signature", func(c *Checkpoint) { c.Sig = "!!" }, k1, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := back
			tt.edit(&c)
			err := c.Verify(tt.pub.Public().(ed25519.PublicKey))
			if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadSignature %q", err, tt.want)
			}
		})
	}
}

func TestCheckpointEveryAndInterval(t *testing.T) {
	r := newCPRig(t, 3)
	l := r.open(t)
	for i := range 7 {
		if _, err := l.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func() (out []uint64) {
		for _, ev := range r.ev.of(security.AuditCheckpoint) {
			cp, err := ParseCheckpoint([]byte(ev.Detail))
			if err != nil {
				t.Fatal(err)
			}
			if err := cp.Verify(r.pub(t)); err != nil || cp.Node != "node-1" {
				t.Fatalf("published checkpoint %+v: %v", cp, err)
			}
			out = append(out, cp.Seq)
		}
		return out
	}
	if got := seqs(); len(got) != 3 || got[0] != 0 || got[1] != 3 || got[2] != 6 {
		t.Fatalf("checkpoints at %v, want [0 3 6]", got)
	}
	// The interval: a tick checkpoints the head when it moved, once.
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.runTicks(ctx, ticks) }()
	ticks <- time.Time{}
	ticks <- time.Time{} // the first tick is handled once this one is taken
	ticks <- time.Time{}
	cancel()
	<-done
	if got := seqs(); len(got) != 4 || got[3] != 7 {
		t.Fatalf("checkpoints at %v, want one more at 7", got)
	}
	cp, err := ReadCheckpointFile(r.cpFile)
	if err != nil || cp.Seq != 7 {
		t.Fatalf("checkpoint file: %+v, %v", cp, err)
	}
	for _, p := range []string{r.cpFile, filepath.Join(r.dir, GeneratedKeyName)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", p, st.Mode(), err)
		}
	}
	if st, _ := os.Stat(filepath.Dir(r.cpFile)); st.Mode().Perm() != 0o700 {
		t.Fatalf("checkpoint dir mode %v", st.Mode())
	}
	if s := l.Stats(); s.Checkpoints != 4 || s.CheckpointErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// tamper applies one attack to a closed trail of 6 entries.
var tampers = []struct {
	name string
	do   func(t *testing.T, r *cpRig)
	want error
}{
	{"lines cut off the end", func(t *testing.T, r *cpRig) {
		editLines(t, r.file, func(l []string) []string { return l[:4] })
	}, ErrTruncated},
	{"file emptied", func(t *testing.T, r *cpRig) {
		if err := os.Truncate(r.file, 0); err != nil {
			t.Fatal(err)
		}
	}, ErrEmptyTrail},
	{"whole file rewritten", func(t *testing.T, r *cpRig) {
		// Someone with file access writes a fresh, self-consistent chain
		// of the same length with other content.
		os.Remove(r.file)
		l, err := Open(Config{File: r.file}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			e := entry(i)
			e.Caller = "api:nobody"
			if _, err := l.Append(e); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}, ErrRewritten},
}

func TestVerifyCheckpointDetects(t *testing.T) {
	for _, tt := range tampers {
		t.Run(tt.name, func(t *testing.T) {
			r := newCPRig(t, 100)
			l := r.open(t)
			for i := range 6 {
				if _, err := l.Append(entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			l.Close() // checkpoints the head: seq 6
			cp, err := ReadCheckpointFile(r.cpFile)
			if err != nil || cp.Seq != 6 {
				t.Fatalf("checkpoint %+v, %v", cp, err)
			}
			if res, err := VerifyCheckpoint(r.file, nil, cp); err != nil || res.Entries != 6 {
				t.Fatalf("intact: %+v, %v", res, err)
			}
			tt.do(t, r)
			// The chain alone does not see it.
			if _, err := VerifyTrail(r.file, nil); err != nil {
				t.Fatalf("chain alone: %v (the test should defeat it)", err)
			}
			_, err = VerifyCheckpoint(r.file, nil, cp)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyCheckpoint: %v, want %v", err, tt.want)
			}
			// Nor does the gateway start on it.
			_, err = OpenWith(r.cfg, r.opts)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "move the checkpoint file aside") {
				t.Fatalf("OpenWith: %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("trail deleted", func(t *testing.T) {
		r := newCPRig(t, 100)
		l := r.open(t)
		l.Append(entry(0))
		l.Close()
		cp, _ := ReadCheckpointFile(r.cpFile)
		os.Remove(r.file)
		if _, err := VerifyCheckpoint(r.file, nil, cp); !errors.Is(err, ErrEmptyTrail) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestOpenRefusesForeignCheckpoint(t *testing.T) {
	r := newCPRig(t, 100)
	l := r.open(t)
	l.Append(entry(0))
	l.Close()
	_, other, _ := ed25519.GenerateKey(nil)
	cp := Checkpoint{Node: "node-1", Seq: 0, Hash: Genesis, Time: t0}
	cp.Sign(other)
	if err := os.WriteFile(r.cpFile, cp.JSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(r.cfg, r.opts); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}

// TestFloodKeepsUncoveredHistory: thousands of entries with 60 KB reasons
// through tiny files and max_files 2 delete nothing the last published
// checkpoint does not cover; they raise a problem instead.
func TestFloodKeepsUncoveredHistory(t *testing.T) {
	for _, withCheckpoints := range []bool{true, false} {
		name := map[bool]string{true: "checkpoints", false: "no checkpoints (the old behaviour)"}[withCheckpoints]
		t.Run(name, func(t *testing.T) {
			r := newCPRig(t, 100)
			r.cfg.MaxBytes, r.cfg.MaxFiles = MinMaxBytes, 2
			if !withCheckpoints {
				r.cfg.CheckpointFile = ""
			}
			l := r.open(t)
			reason := strings.Repeat("x", 60<<10)
			const n = 250
			for i := range n {
				e := entry(i)
				e.Result, e.Reason = Denied, reason
				if _, err := l.Append(e); err != nil {
					t.Fatal(err)
				}
			}
			res, err := VerifyTrail(r.file, nil)
			if err != nil {
				t.Fatal(err)
			}
			covered := uint64(0)
			if withCheckpoints {
				cp, err := ReadCheckpointFile(r.cpFile)
				if err != nil {
					t.Fatal(err)
				}
				covered = cp.Seq
				if covered != 200 {
					t.Fatalf("last checkpoint at %d, want 200", covered)
				}
			}
			if withCheckpoints && res.FirstSeq > covered+1 {
				t.Fatalf("oldest entry kept is %d: entries %d..%d, not covered by the checkpoint, were deleted", res.FirstSeq, covered+1, res.FirstSeq-1)
			}
			if !withCheckpoints && res.FirstSeq <= 201 {
				t.Fatalf("without checkpoints max_files bounds the trail; oldest kept %d", res.FirstSeq)
			}
			if res.LastSeq != n {
				t.Fatalf("last seq %d", res.LastSeq)
			}
			st := l.Stats()
			probs := r.ev.of(security.AuditProblem)
			if withCheckpoints && (st.HeldFiles == 0 || len(probs) == 0 || !strings.Contains(probs[0].Detail, "kept beyond max_files 2")) {
				t.Fatalf("no alarm: stats %+v, problems %v", st, probs)
			}
			if ps := l.Status(); withCheckpoints && (ps.Gauges["held_files"] != float64(st.HeldFiles) || ps.Counters["problems"] != uint64(len(probs))) {
				t.Fatalf("status %+v, stats %+v", ps, st)
			}
			if !withCheckpoints && len(probs) != 0 {
				t.Fatalf("problems without checkpoints: %v", probs)
			}
			// Problems are raised when the count grows, not per rotation.
			if len(probs) > n/10 {
				t.Fatalf("%d problem events", len(probs))
			}
		})
	}
}

func TestLoadSigningKey(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, GeneratedKeyName)
	k1, created, err := LoadSigningKey(conf.Secret{}, gen)
	if err != nil || !created {
		t.Fatalf("generate: %v %v", created, err)
	}
	k2, created, err := LoadSigningKey(conf.Secret{}, gen)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reload: %v %v", created, err)
	}
	seed := base64.StdEncoding.EncodeToString(k1.Seed())
	t.Setenv("SIGN_KEY", seed)
	k3, _, err := LoadSigningKey(conf.Secret{Env: "SIGN_KEY"}, "")
	if err != nil || !k1.Equal(k3) {
		t.Fatalf("from env: %v", err)
	}
	pemFile := filepath.Join(dir, "k.pem")
	data, _ := os.ReadFile(gen)
	os.WriteFile(pemFile, data, 0o600)
	if k4, _, err := LoadSigningKey(conf.Secret{File: pemFile}, ""); err != nil || !k1.Equal(k4) {
		t.Fatalf("from PEM file: %v", err)
	}
	t.Setenv("SIGN_KEY", "")
	if _, _, err := LoadSigningKey(conf.Secret{Env: "SIGN_KEY"}, ""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
	t.Setenv("SIGN_KEY", "hunter2-not-a-key")
	if _, _, err := LoadSigningKey(conf.Secret{Env: "SIGN_KEY"}, ""); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad key: %v (must not echo it)", err)
	}
	pub, err := ParsePublicKey(PublicKeyText(k1.Public().(ed25519.PublicKey)))
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
}

func TestReadCheckpointsFromEventLog(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	var lines []string
	for _, seq := range []uint64{5, 9, 7} {
		if seq == 9 {
			// Only in a syslog line.
			cp := Checkpoint{Node: "n", Seq: seq, Hash: strings.Repeat("c", 64), Time: t0}
			cp.Sign(k)
			lines = append(lines, `<134>1 2026-12-07T10:00:00Z gw weir - - - {"kind":"audit.checkpoint","detail":`+string(mustJSON(string(cp.JSON())))+`}`)
			continue
		}
		cp := Checkpoint{Node: "n", Seq: seq, Hash: strings.Repeat("c", 64), Time: t0}
		cp.Sign(k)
		ev := `{"kind":"audit.checkpoint","detail":` + string(mustJSON(string(cp.JSON()))) + `}`
		lines = append(lines, ev, "not json at all", `<134>1 2026-12-07T10:00:00Z gw weir - - - `+ev)
	}
	cp, err := ReadCheckpoints(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil || cp.Seq != 9 {
		t.Fatalf("newest = %+v, %v", cp, err)
	}
	if _, err := ReadCheckpoints(strings.NewReader("nothing\n")); err == nil {
		t.Fatal("no checkpoint accepted")
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(nil)
	cp := Checkpoint{Node: "n", Seq: 1, Hash: strings.Repeat("d", 64), Time: t0}
	cp.Sign(k)
	f.Add(cp.JSON())
	f.Add([]byte(`{"seq":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCheckpoint(data)
		if err != nil {
			return
		}
		if _, err := ParseCheckpoint(c.JSON()); err != nil {
			t.Fatalf("re-parse of %s: %v", c.JSON(), err)
		}
		_ = c.Verify(k.Public().(ed25519.PublicKey))
	})
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// BenchmarkAppendCheckpointed is BenchmarkAppend with a checkpoint (sign,
// atomic file replace, event) every DefaultCheckpointEvery entries.
func BenchmarkAppendCheckpointed(b *testing.B) {
	dir := b.TempDir()
	l, err := OpenWith(Config{File: filepath.Join(dir, "a.jsonl"), CheckpointFile: filepath.Join(dir, "cp.json")},
		Options{DataDir: dir, Events: security.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	f.Add(PublicKeyText(pub))
	f.Add("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
	})
}
