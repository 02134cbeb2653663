package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// A trail cut short behind its checkpoint stops writes, not the gateway:
// it starts, answers /healthz, delivers data (the audit.problem event
// reaches the MQTT sink through the pipeline), shows the audit component
// failed in /status, refuses an API write with the trail's reason, logs
// an ERROR, and appends nothing to the tampered file.
func TestGatewayDegradesWritesOnTruncatedTrail(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	prefix := fmt.Sprintf("weir-degrade/%d/%d", os.Getpid(), time.Now().UnixNano())
	text, err := demoConfig(closedPort(t), b.Addr(), "127.0.0.1:0", prefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("degrade.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// A trail of 4 entries with its checkpoint at seq 4, laid out as the
	// gateway does; then the last two lines are cut off.
	file := filepath.Join(dir, "audit", "writes.jsonl")
	l, err := audit.OpenWith(audit.Config{File: file, CheckpointFile: audit.CheckpointPath(dir)}, audit.Options{Node: "weir-demo", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := l.Append(audit.Entry{Caller: "api:alice", Path: demoNamespace + "/speed_setpoint", New: model.Int(int64(100 + i)), Result: audit.Allowed}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	data, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(data), "\n")
	cut := strings.Join(lines[:2], "")
	if err := os.WriteFile(file, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}

	problems := make(chan string, 10)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("weir-degrade-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(secEventsHang) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(prefix+"/weir/_security/audit.problem", 1, func(_ paho.Client, m paho.Message) {
		smp, err := payload.DecodeSample(m.Payload())
		if err != nil {
			t.Errorf("%s: %v", m.Topic(), err)
			return
		}
		select {
		case problems <- smp.Value.AsString():
		default:
		}
	})
	if !tok.WaitTimeout(secEventsHang) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	// The result goes to both: waitFile takes one when the gateway ends
	// early, and stop must not wait for it then.
	done, watch := make(chan error, 1), make(chan error, 1)
	go func() {
		err := runGateway(ctx, cfg, ln, log)
		done <- err
		watch <- err
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway: %v", err)
				}
			case <-time.After(secEventsHang):
				t.Error("the gateway did not stop")
			}
		}
	}
	defer stop()
	waitFile(t, filepath.Join(dir, apiAddrFile), watch)

	code, tokOut, errOut := run("token", "create", "-user", "op", "-role", "operator", "-expires", "1h", dir)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	token := strings.TrimSpace(tokOut)
	c := &http.Client{Timeout: 2 * time.Minute}
	get := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	if code, _ := get("GET", "/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	code, out := get("POST", "/api/v1/write", `{"path":"`+demoNamespace+`/speed_setpoint","value":300,"reason":"test"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(out, "audit trail unavailable") || !strings.Contains(out, "audit trail truncated") {
		t.Errorf("write: %d %s, want 503 with the trail's reason", code, out)
	}
	code, out = get("GET", "/status", "")
	var st struct {
		Components []struct {
			Kind, Name, State string
			LastError         string `json:"last_error"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 200 || err != nil {
		t.Fatalf("/status: %d %v %s", code, err, out)
	}
	found := false
	for _, cs := range st.Components {
		if cs.Kind == "audit" {
			found = cs.State == "failed" && strings.Contains(cs.LastError, "audit trail truncated")
		}
	}
	if !found {
		t.Errorf("/status has no failed audit component: %s", out)
	}
	select {
	case p := <-problems:
		if !strings.Contains(p, "audit trail truncated") || !strings.Contains(p, "every write to a device is refused") {
			t.Errorf("audit.problem %s", p)
		}
	case <-time.After(secEventsHang):
		t.Fatal("no audit.problem event reached the sink")
	}
	stop()
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"audit trail problem"`) {
		t.Errorf("no ERROR log of the problem:\n%s", logs.String())
	}
	// Nothing was appended to the tampered trail.
	if after, _ := os.ReadFile(file); string(after) != cut {
		t.Errorf("the trail changed:\n%s", after)
	}
}
