package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Command builds the command that runs `weir args…`: the harness's own
// executable in production, the test binary in tests.
type Command func(args ...string) *exec.Cmd

// gateway is one run of the child gateway process.
type gateway struct {
	cmd  *exec.Cmd
	seq  chan uint64
	done chan struct{}
	err  error // after done
	// token is sent with /status (the API wants a viewer).
	token string

	mu   sync.Mutex
	http string       // status listener, from the log
	tail bytes.Buffer // the last log lines, for error messages
}

// startGateway starts the gateway on cfgPath; its JSON log on stderr says
// where its status listener is and which first_seq it numbers from.
func startGateway(newCmd Command, cfgPath string) (*gateway, error) {
	g := &gateway{seq: make(chan uint64, 1), done: make(chan struct{})}
	g.cmd = newCmd("run", "--log-format", "json", "--http-listen", "127.0.0.1:0", cfgPath)
	// Its own process group: a ^C to the harness is not a signal to it.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			g.mu.Lock()
			if g.tail.Len() > 16<<10 {
				keep := append([]byte(nil), g.tail.Bytes()[g.tail.Len()-8<<10:]...)
				g.tail.Reset()
				g.tail.Write(keep)
			}
			g.tail.Write(line)
			g.tail.WriteByte('\n')
			g.mu.Unlock()
			var rec struct {
				Msg      string `json:"msg"`
				FirstSeq uint64 `json:"first_seq"`
				Addr     string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "http listening":
				g.mu.Lock()
				g.http = rec.Addr
				g.mu.Unlock()
			case "engine started":
				g.seq <- rec.FirstSeq
			}
		}
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// firstSeq waits for the engine to start.
func (g *gateway) firstSeq(ctx context.Context, limit time.Duration) (uint64, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case s := <-g.seq:
		return s, nil
	case <-g.done:
		return 0, fmt.Errorf("gateway exited before starting: %v\n%s", g.err, g.logTail())
	case <-t.C:
		g.kill()
		return 0, fmt.Errorf("gateway did not start within %v\n%s", limit, g.logTail())
	case <-ctx.Done():
		g.kill()
		return 0, ctx.Err()
	}
}

func (g *gateway) kill() {
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.done
}

// stop asks for a graceful stop and waits up to limit, then kills.
func (g *gateway) stop(limit time.Duration) error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-g.done:
		return g.err
	case <-t.C:
		g.kill()
		return errors.New("gateway did not stop on SIGTERM in time; killed")
	}
}

func (g *gateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

func (g *gateway) logTail() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tail.String()
}

// status is what the harness reads from the gateway's /status.
type status struct {
	Pushed       uint64
	Depth        uint64
	DeadLettered uint64
}

var statusClient = &http.Client{Timeout: 2 * time.Second}

// status reads the sink buffer's figures and the dead-letter count.
func (g *gateway) status() (status, error) {
	g.mu.Lock()
	addr := g.http
	g.mu.Unlock()
	if addr == "" {
		return status{}, errors.New("status: no listener yet")
	}
	req, err := http.NewRequest("GET", "http://"+addr+"/status", nil)
	if err != nil {
		return status{}, fmt.Errorf("status: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := statusClient.Do(req)
	if err != nil {
		return status{}, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components []map[string]any `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return status{}, fmt.Errorf("status: %w", err)
	}
	var st status
	found := false
	for _, c := range doc.Components {
		if c["kind"] != "sink" {
			continue
		}
		if b, ok := c["buffer"].(map[string]any); ok {
			st.Pushed += uint64(number(b["pushed"]))
			st.Depth += uint64(number(b["depth"]))
			found = true
		}
		// dead_letters.rejected: samples refused for good, by cause.
		st.DeadLettered += uint64(sumKey(c["dead_letters"], "rejected"))
	}
	if !found {
		return status{}, errors.New("status: no sink buffer")
	}
	return st, nil
}

func number(v any) float64 {
	f, _ := v.(float64)
	return f
}

// sumKey adds up every number stored under key anywhere in v, a number
// or a map of numbers (counted by cause).
func sumKey(v any, key string) float64 {
	var n float64
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == key {
				if f, ok := e.(float64); ok {
					n += f
					continue
				}
				if m, ok := e.(map[string]any); ok { // counted by cause
					for _, f := range m {
						n += number(f)
					}
					continue
				}
			}
			n += sumKey(e, key)
		}
	case []any:
		for _, e := range x {
			n += sumKey(e, key)
		}
	}
	return n
}
