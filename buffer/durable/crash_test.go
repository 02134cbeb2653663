package durable

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/weir-edge/weir/model"
)

// The kill -9 test runs this test binary again as a child that pushes
// numbered samples until it is killed. These variables carry its brief.
const (
	helperEnv      = "WEIR_DURABLE_HELPER_DIR"
	helperFsyncEnv = "WEIR_DURABLE_HELPER_FSYNC"
	helperStartEnv = "WEIR_DURABLE_HELPER_START"
)

// helperProcess opens the store and pushes batches of 10 numbered samples
// as fast as it can, printing the highest number once its Push returned.
func helperProcess() {
	start, _ := strconv.ParseUint(os.Getenv(helperStartEnv), 10, 64)
	b, err := Open(Config{Dir: os.Getenv(helperEnv), Fsync: os.Getenv(helperFsyncEnv)}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	fmt.Fprintln(os.Stdout, "ready")
	batch := make([]model.Sample, 10)
	for n := start; ; n += 10 {
		for i := range batch {
			batch[i] = model.Sample{Path: "kill/test", Value: model.Uint(n + uint64(i)), Seq: n + uint64(i), EdgeTime: time.Now().UnixNano()}
		}
		if err := b.Push(context.Background(), batch); err != nil {
			fmt.Fprintln(os.Stderr, "push:", err)
			os.Exit(4)
		}
		fmt.Fprintf(os.Stdout, "%d\n", n+9)
	}
}

// TestKill9 kills a pushing child at random moments. What it asserts:
// every number whose Push returned is in the store after the kill, exactly
// once and in order, as the contiguous run following the last number the
// parent acked; numbers the parent acked (and released cleanly) never come
// back. Numbers pushed but not yet reported may be there too (the kill hit
// between the write and the print): they must continue the run.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	// Not fsync os: Pebble buffers unsynced WAL writes in the process for
	// a moment, so a kill can lose the last ones (README says so).
	for _, fsync := range []string{FsyncAlways, FsyncGroup} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir() + "/sink"
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
			var acked, stored uint64 // last number acked; highest number stored
			for iter := range 12 {
				reported := runAndKill(t, dir, fsync, stored+1, time.Duration(5+rng.IntN(96))*time.Millisecond)
				b, err := Open(Config{Dir: dir}, testLog(t))
				if err != nil {
					t.Fatalf("iteration %d: Open after kill = %v", iter, err)
				}
				got := readAll(t, b)
				if len(got) > 0 && got[0] != acked+1 {
					t.Fatalf("iteration %d: store starts at %d, want %d (last acked %d)", iter, got[0], acked+1, acked)
				}
				for i := 1; i < len(got); i++ {
					if got[i] != got[i-1]+1 {
						t.Fatalf("iteration %d: %d follows %d: lost, duplicated or reordered", iter, got[i], got[i-1])
					}
				}
				top := acked
				if len(got) > 0 {
					top = got[len(got)-1]
				}
				if reported > top {
					t.Fatalf("iteration %d: Push of %d returned but the store ends at %d", iter, reported, top)
				}
				stored = max(stored, top)
				// Deliver a random part, so acks are crash-tested too.
				k := rng.IntN(len(got) + 1)
				for k > 0 {
					batch := next(t, b, k)
					if err := b.Ack(batch); err != nil {
						t.Fatal(err)
					}
					k -= batch.Len()
					acked += uint64(batch.Len())
				}
				if err := b.Release(); err != nil {
					t.Fatal(err)
				}
				t.Logf("iteration %d: reported %d, stored %d..%d, acked to %d", iter, reported, min(acked+1, top), top, acked)
			}
			if stored < 100 {
				t.Errorf("only %d samples pushed in 12 runs: the child hardly ran", stored)
			}
		})
	}
}

// runAndKill starts the child pushing from start, SIGKILLs it d after it
// opened the store and returns the highest number it reported pushed.
func runAndKill(t *testing.T, dir, fsync string, start uint64, d time.Duration) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, helperFsyncEnv+"="+fsync, helperStartEnv+"="+strconv.FormatUint(start, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr safeBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last atomic.Uint64
	read := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		if sc.Scan() && sc.Text() == "ready" {
			close(ready)
		}
		for sc.Scan() {
			if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				last.Store(n)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("child exited before opening the store: %v\n%s", err, stderr.String())
	}
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	case err := <-exited:
		timer.Stop()
		t.Fatalf("child exited by itself: %v\n%s", err, stderr.String())
	}
	return last.Load()
}

// readAll returns the numbers held, in order, without acking them: one
// batch of everything, nacked.
func readAll(t *testing.T, b *Buffer) []uint64 {
	t.Helper()
	held := b.Stats().Depth
	if held == 0 {
		return nil
	}
	batch := next(t, b, held+1)
	if batch.Len() != held {
		t.Fatalf("Next handed out %d samples, Stats says %d held", batch.Len(), held)
	}
	out := make([]uint64, 0, held)
	for _, s := range batch.Samples {
		if !s.Historical {
			t.Fatalf("sample %d from before the restart is not Historical", s.Seq)
		}
		out = append(out, s.Seq)
	}
	b.Nack(batch)
	return out
}

type safeBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

var _ io.Writer = (*safeBuffer)(nil)

// TestPowerLoss cuts the power (drops every write not synced) after
// concurrent Pushes returned: with fsync always or group nothing they
// acknowledged is lost. With fsync os the loss is the documented risk.
func TestPowerLoss(t *testing.T) {
	tests := []struct {
		fsync    string
		mayLose  bool
		pushers  int
		perPush  int
		pushes   int
		ackFirst int // samples delivered before the cut
	}{
		{FsyncAlways, false, 4, 7, 50, 30},
		{FsyncGroup, false, 8, 10, 50, 100},
		{FsyncOS, true, 1, 10, 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.fsync, func(t *testing.T) {
			fs := vfs.NewStrictMem()
			cfg := Config{Dir: "/data/buffers/sink", Fsync: tt.fsync}
			b, err := open(cfg, testLog(t), options{fs: fs})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for p := range tt.pushers {
				wg.Go(func() {
					for i := range tt.pushes {
						batch := make([]model.Sample, tt.perPush)
						for j := range batch {
							batch[j] = model.Sample{Path: "p", Seq: uint64(p)<<32 | uint64(i*tt.perPush+j)}
						}
						if err := b.Push(context.Background(), batch); err != nil {
							t.Errorf("Push = %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			total := tt.pushers * tt.pushes * tt.perPush
			for k := tt.ackFirst; k > 0; {
				batch := next(t, b, k)
				if err := b.Ack(batch); err != nil {
					t.Fatal(err)
				}
				k -= batch.Len()
			}
			// The cut: nothing written from here on reaches the disk.
			fs.SetIgnoreSyncs(true)
			_ = b.Release()
			fs.ResetToSyncedState()
			fs.SetIgnoreSyncs(false)

			b, err = open(cfg, testLog(t), options{fs: fs})
			if err != nil {
				t.Fatalf("Open after power loss = %v", err)
			}
			defer b.Release()
			got := map[uint64]int{}
			last := map[uint64]int64{}
			held := b.Stats().Depth
			for n := 0; n < held; {
				batch := next(t, b, 1000)
				for _, s := range batch.Samples {
					got[s.Seq]++
					p, i := s.Seq>>32, int64(s.Seq&0xffffffff)
					if l, ok := last[p]; ok && i <= l {
						t.Fatalf("pusher %d: %d after %d", p, i, l)
					}
					last[p] = i
				}
				n += batch.Len()
				_ = b.Ack(batch)
			}
			lost := 0
			for p := range tt.pushers {
				for i := range tt.pushes * tt.perPush {
					seq := uint64(p)<<32 | uint64(i)
					switch c := got[seq]; {
					case c > 1:
						t.Fatalf("sample %d:%d held %d times", p, i, c)
					case c == 0:
						lost++
					}
				}
			}
			// Acked samples may come back (their delete was not synced);
			// everything else must be there.
			if !tt.mayLose && lost > tt.ackFirst {
				t.Fatalf("%d of %d acknowledged samples lost to power loss (at most the %d acked may go)", lost-tt.ackFirst, total, tt.ackFirst)
			}
			t.Logf("fsync %s: %d of %d samples gone after power loss (%d acked before)", tt.fsync, lost, total, tt.ackFirst)
		})
	}
}

// The kill -9 after ack test runs this test binary again as a child that
// pushes and acks, then waits to be killed.
const ackHelperEnv = "WEIR_DURABLE_ACK_HELPER_DIR"

// ackHelperProcess pushes 1..100 (synced), acks 1..30, pushes 101..150
// (synced: it takes the ack to disk too), acks 31..60 (not synced), says
// "acked" and waits for its stdin to close, which the kill pre-empts.
func ackHelperProcess() {
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(3)
	}
	b, err := Open(Config{Dir: os.Getenv(ackHelperEnv), Fsync: os.Getenv(helperFsyncEnv)}, nil)
	if err != nil {
		fail("open", err)
	}
	ctx := context.Background()
	samples := func(from, to uint64) []model.Sample {
		s := make([]model.Sample, 0, to-from+1)
		for n := from; n <= to; n++ {
			s = append(s, model.Sample{Path: "kill/ack", Value: model.Uint(n), Seq: n, EdgeTime: time.Now().UnixNano()})
		}
		return s
	}
	ack := func(n int) {
		batch, err := b.Next(ctx, n)
		if err == nil && batch.Len() != n {
			err = fmt.Errorf("batch of %d, want %d", batch.Len(), n)
		}
		if err == nil {
			err = b.Ack(batch)
		}
		if err != nil {
			fail("next/ack", err)
		}
	}
	if err := b.Push(ctx, samples(1, 100)); err != nil {
		fail("push", err)
	}
	ack(30)
	if err := b.Push(ctx, samples(101, 150)); err != nil {
		fail("push", err)
	}
	ack(30)
	fmt.Fprintln(os.Stdout, "acked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(5) // the parent went away without killing us
}

// TestKill9AfterAck: acks are not synced by themselves (that would cost a
// sink an fsync per batch), so a kill -9 may bring back the samples
// acked since the last synced write — never anything else, and never lose
// one not acked. After the kill the store holds a contiguous run ending at
// the last sample pushed, starting after the samples acked before the last
// synced Push (1..30) and no later than the first one not acked (61).
func TestKill9AfterAck(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, fsync := range []string{FsyncAlways, FsyncGroup} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir() + "/sink"
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), ackHelperEnv+"="+dir, helperFsyncEnv+"="+fsync)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr safeBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			said := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				sc.Scan()
				said <- sc.Text() // the child writes nothing more
			}()
			timer := time.NewTimer(time.Minute) // a bound, not a synchronisation
			defer timer.Stop()
			select {
			case s := <-said:
				if s != "acked" {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("child said %q\n%s", s, stderr.String())
				}
			case <-timer.C:
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child said nothing in a minute\n%s", stderr.String())
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			b := openT(t, Config{Dir: dir}, options{})
			got := readAll(t, b)
			if len(got) == 0 || got[len(got)-1] != 150 {
				t.Fatalf("after kill -9: store holds %v, want a run ending at 150", got)
			}
			first := got[0]
			if first < 31 || first > 61 {
				t.Fatalf("after kill -9: store holds %d..150, want it to start in 31..61 (1..30 acked before a synced push, 61.. never acked)", first)
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Fatalf("after kill -9: %d follows %d: lost, duplicated or reordered", got[i], got[i-1])
				}
			}
			t.Logf("fsync %s: after kill -9 the store holds %d..150 (31..60 were acked without a sync)", fsync, first)
		})
	}
}
