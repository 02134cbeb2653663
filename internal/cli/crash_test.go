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
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/sim"
)

// TestKill9LosesNothingAccepted runs the real gateway as a child process
// (simulated PLC → Modbus source → durable disk buffer → MQTT sink →
// Mosquitto), kills it with SIGKILL at random moments many times, then lets
// a last run drain and stop gracefully. Every other killed run has its sink
// pointed at a port where no broker listens, so everything it accepts must
// survive in the buffer alone.
//
// Every run's samples carry sequence ids first_seq, first_seq+1, …; a
// sample is accepted once its Push to the durable buffer returned, and
// Pushes complete in sequence order. Just before each kill the test reads
// the child's /status: the buffer had accepted P samples by then. Nothing
// accepted was lost when, for every run, the ids received form one
// contiguous range from first_seq covering at least those P samples (only
// ids emitted after that reading may be missing, if the kill came before
// their Push returned). A memory buffer fails this at once.
func TestKill9LosesNothingAccepted(t *testing.T) {
	const mosquitto = "127.0.0.1:1883"
	if c, err := net.DialTimeout("tcp", mosquitto, time.Second); err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("Mosquitto is not answering on %s: %v", mosquitto, err)
		}
		t.Skipf("Mosquitto is not answering on %s: %v", mosquitto, err)
	} else {
		c.Close()
	}
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

	dir := t.TempDir()
	prefix := fmt.Sprintf("weir-kill9/%d/%d", os.Getpid(), time.Now().UnixNano())
	cfgPath := filepath.Join(dir, "weir.yaml")
	offlinePath := filepath.Join(dir, "weir-offline.yaml")
	if err := os.WriteFile(cfgPath, []byte(killConfig(s.Addr(), mosquitto, prefix, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(offlinePath, []byte(killConfig(s.Addr(), closedPort(t), prefix, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}

	// The consumer: a third-party MQTT client subscribed for the whole test.
	var mu sync.Mutex
	received := map[uint64]bool{}
	historical := 0
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).
		SetClientID(fmt.Sprintf("weir-kill9-sub-%d", os.Getpid())))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(prefix+"/#", 1, func(_ paho.Client, m paho.Message) {
		if strings.Contains(m.Topic(), "/_status/") {
			return
		}
		smp, err := payload.DecodeSample(m.Payload())
		if err != nil {
			t.Errorf("%s: %v", m.Topic(), err)
			return
		}
		mu.Lock()
		received[smp.Seq] = true
		if smp.Historical {
			historical++
		}
		mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	var firstSeqs []uint64
	accepted := map[int]uint64{} // run → samples its buffer had accepted shortly before the kill
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := 0; i <= kills; i++ {
		last := i == kills
		path := cfgPath
		if !last && i%2 == 1 {
			path = offlinePath
		}
		child := startChild(t, "run", "-c", path, "--log-format", "json", "--http-listen", "127.0.0.1:0")
		firstSeqs = append(firstSeqs, child.firstSeq(t))
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
			_ = child.cmd.Process.Signal(syscall.SIGTERM)
		} else {
			time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // a random moment to kill at
			accepted[i] = child.buffer(t).Pushed
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			_ = child.cmd.Process.Kill()
		}
		if err := child.wait(); err != nil && last {
			t.Fatalf("final run: %v\n%s", err, child.stderr())
		}
	}

	// The broker may still be forwarding: check until every run is
	// complete, and report what is missing only if it stays missing.
	var total int
	var missing error
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		total, missing = checkRuns(t, received, firstSeqs, accepted)
		mu.Unlock()
		if missing == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling what the subscriber received
	}
	if missing != nil {
		t.Fatal(missing)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d runs, %d kills, %d samples, %d replayed as historical", len(firstSeqs), kills, total, historical)
}

// checkRuns checks that every run's sequence ids arrived as one
// contiguous range from its first_seq, at least as long as what its
// buffer had accepted before the kill; it returns the number of samples.
func checkRuns(t *testing.T, received map[uint64]bool, firstSeqs []uint64, accepted map[int]uint64) (int, error) {
	seqs := make([]uint64, 0, len(received))
	for q := range received {
		seqs = append(seqs, q)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	total := 0
	var logs []string
	for i, first := range firstSeqs {
		end := ^uint64(0)
		if i+1 < len(firstSeqs) {
			end = firstSeqs[i+1]
		}
		var run []uint64
		for _, q := range seqs {
			if q >= first && q < end {
				run = append(run, q)
			}
		}
		for j, q := range run {
			if q != first+uint64(j) {
				return 0, fmt.Errorf("run %d (first_seq %d): seq %d missing — an accepted sample was lost (have %d samples up to %d)",
					i, first, first+uint64(j), len(run), run[len(run)-1])
			}
		}
		if uint64(len(run)) < accepted[i] {
			return 0, fmt.Errorf("run %d: the buffer had accepted %d samples before the kill, only %d were delivered", i, accepted[i], len(run))
		}
		total += len(run)
		logs = append(logs, fmt.Sprintf("run %d: %d samples delivered, contiguous from first_seq (%d accepted at the last reading before the kill)", i, len(run), accepted[i]))
	}
	if total == 0 || len(seqs) != total {
		return 0, fmt.Errorf("%d samples outside every run's range (total %d)", len(seqs)-total, total)
	}
	for _, l := range logs {
		t.Log(l)
	}
	return total, nil
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
	resp, err := http.Get("http://" + addr + "/status")
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
	case <-time.After(20 * time.Second):
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
