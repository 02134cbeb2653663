package historian

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

const killChildEnv = "WEIR_HISTORIAN_KILL_CHILD"

// TestKillKeepsAcked: a process writing batches is killed (SIGKILL, no
// Close, no checkpoint) after it acknowledged some; every sample of every
// acknowledged batch is in the files afterwards, read by a fresh store.
// The child is this test binary, run again with killChildEnv set.
func TestKillKeepsAcked(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsAcked$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make(chan int)
	go func() {
		defer close(acked)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
				if v, err := strconv.Atoi(n); err == nil {
					acked <- v
				}
			}
		}
	}()
	last := -1
	hang := time.After(2 * time.Minute) // bounds a hang; the child needs well under a second
	for last < 30 {
		select {
		case n, ok := <-acked:
			if !ok {
				t.Fatalf("child ended after %d batches: %v", last, cmd.Wait())
			}
			last = n
		case <-hang:
			cmd.Process.Kill()
			t.Fatalf("child acknowledged %d batches in 2 minutes", last)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for n := range acked { // lines written before the kill
		last = n
	}
	cmd.Wait()
	got := readAll(t, dir)
	have := map[uint64]bool{}
	for _, sm := range got {
		have[sm.Seq] = true
	}
	for seq := range uint64((last + 1) * killBatch) {
		if !have[seq] {
			t.Fatalf("sample %d of acknowledged batch %d lost (%d batches acked, %d samples on disk)", seq, int(seq)/killBatch, last+1, len(got))
		}
	}
	t.Logf("%d batches acknowledged before the kill, %d samples on disk", last+1, len(got))
}

const killBatch = 500

// killChild writes batches until killed and prints "acked N" after batch
// N's Write returned.
func killChild(dir string) {
	ctx := context.Background()
	s, err := New(Config{Dir: dir, MinFreeBytes: -1}, nil)
	if err == nil {
		err = s.Connect(ctx)
	}
	if err != nil {
		fmt.Println("error", err)
		return
	}
	ts := time.Now().UnixNano()
	batch := make([]model.Sample, killBatch)
	for n := 0; n < 100_000; n++ {
		for i := range batch {
			ts += int64(time.Millisecond)
			batch[i] = model.Sample{Path: fmt.Sprintf("k/tag%d", i%50), Value: model.Int(int64(n)), SourceTime: ts, Seq: uint64(n*killBatch + i)}
		}
		if err := s.Write(ctx, batch); err != nil {
			fmt.Println("error", err)
			return
		}
		fmt.Printf("acked %d\n", n)
	}
}
