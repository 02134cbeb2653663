package audit

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-edge/weir/internal/conf"
)

// rotCfg is a trail in a fresh directory that rotates every dozen entries
// or so (an entry is about 330 bytes), keeping maxFiles rotated files.
func rotCfg(t *testing.T, maxFiles int, key string) Config {
	t.Helper()
	cfg := Config{File: filepath.Join(t.TempDir(), "audit", "writes.jsonl"), MaxBytes: MinMaxBytes, MaxFiles: maxFiles}
	if key != "" {
		t.Setenv("TEST_AUDIT_KEY", key)
		cfg.Key = conf.Secret{Env: "TEST_AUDIT_KEY"}
	}
	return cfg
}

// appendN opens the trail, appends entries from seq from+1 on, to n in all,
// and closes it.
func appendN(t *testing.T, cfg Config, log *slog.Logger, from, n int) {
	t.Helper()
	l, err := Open(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := from; i < n; i++ {
		e, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", e.Seq, i+1)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// trailLines reads every file of the trail, oldest first.
func trailLines(t *testing.T, active string) (files []string, lines [][]string) {
	t.Helper()
	rotated, err := rotatedFiles(active)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rotated {
		files = append(files, r.path)
	}
	if _, err := os.Stat(active); err == nil {
		files = append(files, active)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSuffix(string(raw), "\n")
		if s == "" {
			lines = append(lines, nil)
			continue
		}
		lines = append(lines, strings.Split(s, "\n"))
	}
	return files, lines
}

func mustParse(t *testing.T, line string) Entry {
	t.Helper()
	e, err := ParseLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRotationContinuesChain(t *testing.T) {
	for _, key := range []string{"", "s3cret"} {
		t.Run("key="+key, func(t *testing.T) {
			cfg := rotCfg(t, -1, key)
			appendN(t, cfg, nil, 0, 50)
			files, lines := trailLines(t, cfg.File)
			if len(files) < 4 {
				t.Fatalf("%d files after 50 entries of ~330 bytes with max_bytes 4096", len(files))
			}
			var prev Entry
			for i, f := range files {
				first := mustParse(t, lines[i][0])
				if i < len(files)-1 {
					if want := rotatedName(cfg.File, first.Seq); f != want {
						t.Fatalf("file %d is %s, want %s", i, f, want)
					}
					// Rotated at the bound: full, and the next entry did not fit.
					st, _ := os.Stat(f)
					next := len(lines[i+1][0]) + 1
					if st.Size() > cfg.MaxBytes || st.Size()+int64(next) <= cfg.MaxBytes {
						t.Fatalf("%s holds %d bytes, next line %d, bound %d", f, st.Size(), next, cfg.MaxBytes)
					}
				}
				if i == 0 {
					if first.Seq != 1 || first.PrevHash != Genesis {
						t.Fatalf("first entry %+v", first)
					}
				} else if first.Seq != prev.Seq+1 || first.PrevHash != prev.Hash {
					t.Fatalf("%s starts at seq %d prev_hash %s; previous file ended at %d hash %s",
						f, first.Seq, first.PrevHash, prev.Seq, prev.Hash)
				}
				prev = mustParse(t, lines[i][len(lines[i])-1])
			}
			res, err := VerifyTrail(cfg.File, []byte(key))
			if err != nil || res.Entries != 50 || len(res.Files) != len(files) || res.FirstSeq != 1 ||
				res.LastSeq != 50 || res.LastHash != prev.Hash || res.RotatedAway() {
				t.Fatalf("VerifyTrail = %+v, %v", res, err)
			}
			if n, err := VerifyKey(cfg.File, []byte(key)); err != nil || n != 50 {
				t.Fatalf("VerifyKey = %d, %v", n, err)
			}
			// Reopening fills the tail from the newest rotated file too.
			l := openLog(t, cfg)
			tail, err := l.Tail(TailSize)
			if err != nil || len(tail) != len(lines[len(lines)-1])+len(lines[len(lines)-2]) || tail[len(tail)-1].Seq != 50 {
				t.Fatalf("tail after reopen: %d entries, %v", len(tail), err)
			}
		})
	}
}

// rehash rewrites an entry's line with a correct own hash, as someone
// without a key can.
func rehash(t *testing.T, line string, edit func(*Entry)) string {
	t.Helper()
	e := mustParse(t, line)
	edit(&e)
	e.Hash = hasher{}.sum(appendCanonical(nil, &e))
	return string(appendLine(nil, &e))
}

func TestVerifyRotatedTampering(t *testing.T) {
	// files[i] is the i-th file of a 55-entry trail, the active one last.
	tests := []struct {
		name     string
		edit     func(t *testing.T, files []string, lines [][]string)
		wantFile int // index into files
		wantLine int
		want     []string
	}{
		{name: "changed entry in a rotated file", edit: func(t *testing.T, files []string, lines [][]string) {
			lines[1][2] = strings.Replace(lines[1][2], "api:alice", "api:bobby", 1)
			writeLines(t, files[1], lines[1])
		}, wantFile: 1, wantLine: 3, want: []string{"hash mismatch"}},
		{name: "middle rotated file removed", edit: func(t *testing.T, files []string, _ [][]string) {
			os.Remove(files[1])
		}, wantFile: 2, wantLine: 1, want: []string{"seq 25 follows 12, the last entry of the previous file writes.00000000000000000001.jsonl", "a rotated file removed"}},
		{name: "line inside a rotated file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			writeLines(t, files[1], append(lines[1][:4:4], lines[1][5:]...))
		}, wantFile: 1, wantLine: 5, want: []string{"follows", "entries removed?"}},
		{name: "last line of a rotated file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			writeLines(t, files[1], lines[1][:len(lines[1])-1])
		}, wantFile: 2, wantLine: 1, want: []string{"follows", "entries removed from its end"}},
		{name: "last line of a rotated file rewritten with a valid hash", edit: func(t *testing.T, files []string, lines [][]string) {
			last := len(lines[0]) - 1
			lines[0][last] = rehash(t, lines[0][last], func(e *Entry) { e.Caller = "api:bobby" })
			writeLines(t, files[0], lines[0])
		}, wantFile: 1, wantLine: 1, want: []string{"prev_hash does not match the hash of the last entry of the previous file"}},
		{name: "first line of the oldest file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			writeLines(t, files[0], lines[0][1:])
		}, wantFile: 0, wantLine: 1, want: []string{"first entry is seq 2, but the file name says 1"}},
		{name: "first line of a middle file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			writeLines(t, files[2], lines[2][1:])
		}, wantFile: 2, wantLine: 1, want: []string{"but the file name says"}},
		{name: "rotated file emptied", edit: func(t *testing.T, files []string, _ [][]string) {
			os.WriteFile(files[1], nil, 0o600)
		}, wantFile: 1, wantLine: 1, want: []string{"rotated file is empty"}},
		{name: "first line of the active file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			n := len(files) - 1
			writeLines(t, files[n], lines[n][1:])
		}, wantFile: -1, wantLine: 1, want: []string{"follows", "the last entry of the previous file"}},
		{name: "line inside the active file removed", edit: func(t *testing.T, files []string, lines [][]string) {
			n := len(files) - 1
			writeLines(t, files[n], append(lines[n][:1:1], lines[n][2:]...))
		}, wantFile: -1, wantLine: 2, want: []string{"follows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rotCfg(t, -1, "")
			appendN(t, cfg, nil, 0, 55)
			files, lines := trailLines(t, cfg.File)
			if len(files) < 4 || len(lines[len(lines)-1]) < 3 {
				t.Fatalf("%d files, %d lines in the active one", len(files), len(lines[len(lines)-1]))
			}
			tt.edit(t, files, lines)
			_, err := Verify(cfg.File)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a VerifyError", err)
			}
			wantFile := files[(tt.wantFile+len(files))%len(files)]
			if ve.File != wantFile || ve.Line != tt.wantLine {
				t.Fatalf("err = %v, want %s line %d", err, wantFile, tt.wantLine)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMaxFilesDeletesOldest(t *testing.T) {
	cfg := rotCfg(t, 2, "k")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	appendN(t, cfg, log, 0, 60)
	files, lines := trailLines(t, cfg.File)
	if len(files) != 3 {
		t.Fatalf("files %v, want 2 rotated and the active one", files)
	}
	oldest := mustParse(t, lines[0][0])
	if oldest.Seq == 1 {
		t.Fatal("nothing was deleted")
	}
	res, err := VerifyTrail(cfg.File, []byte("k"))
	if err != nil || !res.RotatedAway() || res.FirstSeq != oldest.Seq || res.LastSeq != 60 ||
		res.Entries != 60-int(oldest.Seq)+1 || len(res.Files) != 3 {
		t.Fatalf("VerifyTrail = %+v, %v", res, err)
	}
	// Each deletion is logged at info level with the file.
	deleted := rotatedName(cfg.File, 1)
	if !strings.Contains(logs.String(), `level=INFO msg="audit trail: deleted the oldest rotated file (max_files)" file=`+deleted+" first_seq=1 ") {
		t.Fatalf("no info line about deleting %s in\n%s", deleted, logs.String())
	}

	// Lowering max_files deletes the excess at the next Open.
	openLog(t, Config{File: cfg.File, Key: cfg.Key, MaxBytes: cfg.MaxBytes, MaxFiles: 1}).Close()
	if files, _ := trailLines(t, cfg.File); len(files) != 2 {
		t.Fatalf("files after reopening with max_files 1: %v", files)
	}
	if res, err := VerifyTrail(cfg.File, []byte("k")); err != nil || !res.RotatedAway() || res.LastSeq != 60 {
		t.Fatalf("VerifyTrail = %+v, %v", res, err)
	}
}

// The last hash logged for a deleted file is the one the next file's first
// entry names as prev_hash, which ties the kept chain to the deleted file.
func TestDeletedFileLastHash(t *testing.T) {
	cfg := rotCfg(t, -1, "")
	appendN(t, cfg, nil, 0, 30)
	files, lines := trailLines(t, cfg.File)
	if len(files) != 3 {
		t.Fatalf("files %v, want 2 rotated and the active one", files)
	}
	next := mustParse(t, lines[1][0])
	var logs bytes.Buffer
	cfg.MaxFiles = 1
	l, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	want := fmt.Sprintf("file=%s first_seq=1 last_seq=%d last_hash=%s", files[0], next.Seq-1, next.PrevHash)
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
	if _, err := os.Stat(files[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("oldest file still there: %v", err)
	}
}

func TestOpenAfterCrashInRotation(t *testing.T) {
	tests := []struct {
		name  string
		crash func(t *testing.T, cfg Config, activeFirst uint64)
	}{
		{"renamed, no active file", func(t *testing.T, cfg Config, activeFirst uint64) {
			if err := os.Rename(cfg.File, rotatedName(cfg.File, activeFirst)); err != nil {
				t.Fatal(err)
			}
		}},
		{"renamed, empty active file", func(t *testing.T, cfg Config, activeFirst uint64) {
			if err := os.Rename(cfg.File, rotatedName(cfg.File, activeFirst)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.File, nil, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"before the rename", func(*testing.T, Config, uint64) {}},
	}
	for _, key := range []string{"", "k"} {
		for _, tt := range tests {
			t.Run(tt.name+"/key="+key, func(t *testing.T) {
				cfg := rotCfg(t, -1, key)
				appendN(t, cfg, nil, 0, 30)
				_, lines := trailLines(t, cfg.File)
				active := lines[len(lines)-1]
				last := mustParse(t, active[len(active)-1])
				tt.crash(t, cfg, mustParse(t, active[0]).Seq)
				// The interrupted state verifies as it is.
				if res, err := VerifyTrail(cfg.File, []byte(key)); err != nil || res.Entries != 30 {
					t.Fatalf("VerifyTrail after the crash = %+v, %v", res, err)
				}
				l := openLog(t, cfg)
				if tail, err := l.Tail(1); err != nil || len(tail) != 1 || tail[0].Seq != 30 {
					t.Fatalf("tail after reopen: %v, %v", tail, err)
				}
				e, err := l.Append(entry(30))
				if err != nil || e.Seq != 31 || e.PrevHash != last.Hash {
					t.Fatalf("Append after the crash = seq %d prev_hash %s, %v; want 31 after %s", e.Seq, e.PrevHash, err, last.Hash)
				}
				l.Close()
				appendN(t, cfg, nil, 31, 60)
				if res, err := VerifyTrail(cfg.File, []byte(key)); err != nil || res.Entries != 60 || res.RotatedAway() {
					t.Fatalf("VerifyTrail = %+v, %v", res, err)
				}
			})
		}
	}
}

func TestRotateFailureIsStickyAndLosesNothing(t *testing.T) {
	cfg := rotCfg(t, -1, "")
	l := openLog(t, cfg)
	// Something already holds the name the active file rotates to.
	obstacle := rotatedName(cfg.File, 1)
	if err := os.WriteFile(obstacle, []byte("not ours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var n int
	var err error
	for n = 0; n < 100; n++ {
		if _, err = l.Append(entry(n)); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Append over an existing rotated name: %v", err)
	}
	if _, err := l.Append(entry(n)); err == nil || l.Err() == nil {
		t.Fatal("Append after a failed rotation succeeded")
	}
	l.Close()
	if b, _ := os.ReadFile(obstacle); string(b) != "not ours\n" {
		t.Fatalf("obstacle overwritten: %q", b)
	}
	os.Remove(obstacle)
	appendN(t, cfg, nil, n, 40)
	if res, err := Verify(cfg.File); err != nil || res != 40 {
		t.Fatalf("Verify = %d, %v", res, err)
	}
}

func TestVerifyLoneRotatedFile(t *testing.T) {
	cfg := rotCfg(t, -1, "")
	appendN(t, cfg, nil, 0, 40)
	files, lines := trailLines(t, cfg.File)
	for i, f := range files[:len(files)-1] {
		res, err := VerifyTrail(f, nil)
		if err != nil || res.Entries != len(lines[i]) || len(res.Files) != 1 || res.RotatedAway() != (i > 0) {
			t.Fatalf("VerifyTrail(%s) = %+v, %v", f, res, err)
		}
	}
}

func TestVerifyMissingTrail(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "none.jsonl"), filepath.Join(dir, "nodir", "none.jsonl")} {
		if _, err := Verify(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Verify(%s) = %v, want not exist", p, err)
		}
	}
}

func TestRotatedNames(t *testing.T) {
	tests := []struct {
		active string
		seq    uint64
		want   string
	}{
		{"/a/writes.jsonl", 1, "/a/writes.00000000000000000001.jsonl"},
		{"/a/trail", 42, "/a/trail.00000000000000000042"},
		{"/a/x.y.log", 18446744073709551615, "/a/x.y.18446744073709551615.log"},
	}
	for _, tt := range tests {
		got := rotatedName(tt.active, tt.seq)
		if got != tt.want {
			t.Fatalf("rotatedName(%s, %d) = %s, want %s", tt.active, tt.seq, got, tt.want)
		}
		if seq, ok := asRotated(got); !ok || seq != tt.seq {
			t.Fatalf("asRotated(%s) = %d, %v", got, seq, ok)
		}
		if _, ok := asRotated(tt.active); ok {
			t.Fatalf("asRotated(%s) is true", tt.active)
		}
	}
	// Only exact names count as rotated files.
	dir := t.TempDir()
	active := filepath.Join(dir, "writes.jsonl")
	for _, name := range []string{"writes.jsonl", "writes.jsonl.torn-123", "writes.0000000000000000001.jsonl",
		"writes.0000000000000000000x.jsonl", "other.00000000000000000001.jsonl", "writes.00000000000000000007.jsonl",
		"writes.00000000000000000003.jsonl"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, "writes.00000000000000000005.jsonl"), 0o700)
	got, err := rotatedFiles(active)
	if err != nil || len(got) != 2 || got[0].seq != 3 || got[1].seq != 7 {
		t.Fatalf("rotatedFiles = %+v, %v", got, err)
	}
}
