package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/internal/soak"
	"github.com/weir-edge/weir/sim"
)

// TestKill9LosesNothingAccepted runs the real gateway as a child process
// (simulated PLC → Modbus source → durable disk buffer → MQTT sink → an
// embedded broker of its own on a spare port), kills it with SIGKILL at
// random moments many times, then lets a last run drain and stop
// gracefully. Every other killed run has its sink pointed at a port where
// no broker listens, so everything it accepts must survive in the buffer
// alone.
//
// Every run's samples carry sequence ids first_seq, first_seq+1, …; a
// sample is accepted once its Push to the durable buffer returned, and
// Pushes complete in sequence order. Just before each kill the test reads
// the child's /status: the buffer had accepted P samples by then. The
// broker hands every message it accepts to a soak.Checker (the one `weir
// soak` uses): nothing accepted was lost when every run's ids from
// first_seq cover at least those P samples without a gap; redeliveries are
// counted as duplicates, and a tag's new ids must arrive in increasing
// order. A memory buffer fails this at once.
func TestKill9LosesNothingAccepted(t *testing.T) {
	kills := 8
	if testing.Short() {
		kills = 3
	}
	s, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 3, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The consumer: the broker itself, which sees every message before it
	// acknowledges it.
	prefix := fmt.Sprintf("weir-kill9/%d", os.Getpid())
	check := soak.NewChecker()
	var historical atomic.Int64
	mq, err := soak.NewBroker(prefix, func(tag string, data []byte) {
		if strings.HasPrefix(tag, "_status/") {
			return
		}
		smp, err := payload.DecodeSample(data)
		if err != nil {
			t.Errorf("%s: %v", tag, err)
			return
		}
		check.Observe(tag, smp.Seq)
		if smp.Historical {
			historical.Add(1)
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mq.Start(); err != nil {
		t.Fatal(err)
	}
	defer mq.Stop()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "weir.yaml")
	offlinePath := filepath.Join(dir, "weir-offline.yaml")
	if err := os.WriteFile(cfgPath, []byte(killConfig(s.Addr(), mq.Addr(), prefix, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(offlinePath, []byte(killConfig(s.Addr(), closedPort(t), prefix, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}

	token := viewerToken(t, filepath.Join(dir, "data"))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := 0; i <= kills; i++ {
		last := i == kills
		path := cfgPath
		if !last && i%2 == 1 {
			path = offlinePath
		}
		child := startChild(t, "run", "-c", path, "--log-format", "json", "--http-listen", "127.0.0.1:0")
		child.token = token
		run := check.AddRun(soak.RunInfo{FirstSeq: child.firstSeq(t)})
		if last {
			// Let the final run deliver the backlog the killed runs left:
			// its buffer is empty once (live data keeps coming, so a few
			// samples may be in flight at any reading).
			deadline := time.Now().Add(time.Minute)
			for child.buffer(t).Depth != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the final run did not deliver the backlog within a minute: %+v", child.buffer(t))
				}
				time.Sleep(50 * time.Millisecond) // polling the child's /status
			}
			accepted := child.buffer(t).Pushed
			check.UpdateRun(run, func(r *soak.RunInfo) { r.Accepted = accepted })
			_ = child.cmd.Process.Signal(syscall.SIGTERM)
		} else {
			time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // a random moment to kill at
			accepted := child.buffer(t).Pushed
			check.UpdateRun(run, func(r *soak.RunInfo) { r.Accepted = accepted })
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			_ = child.cmd.Process.Kill()
		}
		if err := child.wait(); err != nil && last {
			t.Fatalf("final run: %v\n%s", err, child.stderr())
		}
	}

	// The final run may still be publishing what it drained: check until
	// nothing accepted is missing, and report it only if it stays missing.
	var res soak.Result
	for deadline := time.Now().Add(30 * time.Second); ; {
		res = check.Result()
		if res.Lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling what the broker received
	}
	for i, r := range res.Runs {
		t.Logf("run %d: %d samples delivered (%d accepted at the last reading before the kill), %d missing", i, r.Delivered, r.Accepted, r.Missing)
	}
	if why := res.Failed(); why != "" {
		t.Fatal(why)
	}
	if res.Delivered == 0 {
		t.Fatal("nothing delivered")
	}
	t.Logf("%d runs, %d kills, %d samples, %d replayed as historical, %d duplicates %v, %d order violations",
		len(res.Runs), kills, res.Delivered, historical.Load(), res.DuplicateCount(), res.Duplicates, res.OrderViolations())
}

func killConfig(simAddr, broker, prefix, dataDir string) string {
	return fmt.Sprintf(`node: {id: weir-kill9}
data_dir: %q
engine: {drain_timeout: 5s}
sources:
  - name: plant
    modbus:
      devices:
        - name: plc
          address: %q
          namespace: acme/kill9/line/filler
          groups:
            - interval: 20ms
              tags:
                - {name: product_temp, table: input, address: 0, type: float32}
                - {name: bottle_count, table: input, address: 6, type: uint32, order: CDAB}
                - {name: speed_setpoint, table: holding, address: 0, type: uint16}
                - {name: run_cmd, table: coil, address: 0, type: bool}
sinks:
  - name: uns
    batch_size: 200
    buffer: {type: disk, fsync: always, policy: block}
    mqtt:
      url: tcp://%s
      client_id: weir-kill9-%d
      topic_prefix: %s
      qos: 1
`, dataDir, simAddr, broker, os.Getpid(), prefix)
}

type child struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	errBuf bytes.Buffer
	seq    chan uint64
	done   chan error
	http   string // status listener, from the log
	token  string // sent with /status
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// bufferStats are the child's sink buffer figures from its /status.
type bufferStats struct {
	Pushed uint64 `json:"pushed"`
	Depth  uint64 `json:"depth"`
}

// buffer reads the child's sink buffer figures.
func (c *child) buffer(t *testing.T) bufferStats {
	t.Helper()
	c.mu.Lock()
	addr := c.http
	c.mu.Unlock()
	req, _ := http.NewRequest("GET", "http://"+addr+"/status", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Components []struct {
			Kind   string       `json:"kind"`
			Buffer *bufferStats `json:"buffer"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, c := range st.Components {
		if c.Kind == "sink" && c.Buffer != nil {
			return *c.Buffer
		}
	}
	t.Fatal("status has no sink buffer")
	return bufferStats{}
}

// startChild runs this test binary as `weir args…`.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{seq: make(chan uint64, 1), done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), "WEIR_CLI_CHILD=1", "WEIR_CLI_ARGS="+strings.Join(args, "\n"))
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			c.mu.Lock()
			c.errBuf.Write(line)
			c.errBuf.WriteByte('\n')
			c.mu.Unlock()
			var rec struct {
				Msg      string `json:"msg"`
				FirstSeq uint64 `json:"first_seq"`
				Addr     string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil {
				switch rec.Msg {
				case "http listening":
					c.mu.Lock()
					c.http = rec.Addr
					c.mu.Unlock()
				case "engine started":
					c.seq <- rec.FirstSeq
				}
			}
		}
		c.done <- c.cmd.Wait()
	}()
	return c
}

func (c *child) firstSeq(t *testing.T) uint64 {
	t.Helper()
	select {
	case s := <-c.seq:
		return s
	case err := <-c.done:
		t.Fatalf("weir exited before starting: %v\n%s", err, c.stderr())
	case <-time.After(2 * time.Minute): // bounds a hang, not a slow start
		_ = c.cmd.Process.Kill()
		t.Fatalf("weir did not start\n%s", c.stderr())
	}
	return 0
}

func (c *child) wait() error { return <-c.done }

func (c *child) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errBuf.String()
}
