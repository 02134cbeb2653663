package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/secevents"
	"github.com/weir-edge/weir/security"
	httpsink "github.com/weir-edge/weir/sinks/http"
)

// captured keeps the events a recorder is given.
type captured struct {
	mu  sync.Mutex
	evs []security.Event
}

func (c *captured) Record(_ context.Context, ev security.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
}

// weir audit verify -checkpoint takes the checkpoint in every form IT
// receives it, each produced here by the code that sends it: the bare
// checkpoint, the event JSON, the MQTT/NATS/Kafka payload (sample and
// batch) of the event's sample, the HTTP sink's body, the syslog line
// (also octet-counted behind a collector's prefix); of several lines the
// newest one the key signed is used. The trail is cut short behind the
// checkpoint, so "truncated" proves the checkpoint was found and used.
func TestAuditVerifyCheckpointForms(t *testing.T) {
	dir, file := checkpointedTrail(t)
	pub := strings.TrimSpace(run1(t, "audit", "pubkey", "-data-dir", dir))
	// Reopening takes a checkpoint of seq 6 and publishes it through the
	// SOC stream, as the gateway does.
	stream, err := secevents.New(secevents.Config{}, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs captured
	l, err := audit.OpenWith(audit.Config{File: file, CheckpointFile: audit.CheckpointPath(dir)},
		audit.Options{Node: "n1", DataDir: dir, Events: security.Fanout{stream, &evs}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	var ev security.Event
	for _, e := range evs.evs {
		if e.Kind == security.AuditCheckpoint {
			ev = e
		}
	}
	samples := stream.Flush(time.Now(), nil)
	var smp model.Sample
	for _, s := range samples {
		if strings.HasSuffix(s.Path, "/audit.checkpoint") {
			smp = s
		}
	}
	if ev.Detail == "" || smp.Path == "" {
		t.Fatalf("no checkpoint event (%+v) or sample (%+v)", evs.evs, samples)
	}
	// The HTTP sink's body, as a receiver gets it.
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case bodies <- string(b):
		default:
		}
	}))
	defer srv.Close()
	hs, err := httpsink.New(httpsink.Config{URL: srv.URL, Node: "n1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := hs.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := hs.Write(ctx, []model.Sample{smp}); err != nil {
		t.Fatal(err)
	}
	hs.Close(ctx)
	body := <-bodies
	f := secevents.Formatter{Facility: 4, Hostname: "gw1", AppName: "weir", ProcID: "42", Node: "n1"}
	syslogLine := string(f.Append(nil, ev))
	// A newer checkpoint another key signed (another node, or forged).
	cp, err := audit.ReadCheckpoints(strings.NewReader(ev.Detail))
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	forged := cp
	forged.Seq, forged.Hash = 99, strings.Repeat("e", 64)
	forged.Sign(other)

	// Cut the trail behind the checkpoint; the node's own copy goes.
	data, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(file, []byte(strings.Join(lines[:4], "")), 0o600)
	os.RemoveAll(filepath.Dir(audit.CheckpointPath(dir)))

	tests := []struct{ name, held, note string }{
		{"bare checkpoint", ev.Detail, ""},
		{"event JSON", smp.Value.AsString(), ""},
		{"MQTT/NATS/Kafka sample payload", string(payload.AppendSample(nil, smp)), ""},
		{"MQTT/NATS/Kafka batch payload", string(payload.AppendBatch(nil, []model.Sample{smp})), ""},
		{"HTTP sink body", body, ""},
		{"syslog line", syslogLine, ""},
		{"syslog, octet-counted behind a collector's prefix", fmt.Sprintf("Dec  7 10:00:00 collector %d %s", len(syslogLine), syslogLine), ""},
		{"several lines", strings.Join([]string{"garbage", string(forged.JSON()), string(payload.AppendSample(nil, smp)), syslogLine, `{"value":"x"}`}, "\n"),
			"1 newer checkpoint(s) skipped: not signed by " + pub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := filepath.Join(t.TempDir(), "held.txt")
			if err := os.WriteFile(held, []byte(tt.held+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := run("audit", "verify", "-checkpoint", held, "-pubkey", pub, file)
			if code != 1 || !strings.Contains(errOut, "audit trail truncated: the trail ends at seq 4") {
				t.Fatalf("exit %d, stderr %q\nheld: %s", code, errOut, tt.held)
			}
		})
	}
	// The note about skipped lines shows on an intact trail.
	os.WriteFile(file, data, 0o600)
	held := filepath.Join(t.TempDir(), "held.txt")
	os.WriteFile(held, []byte(tests[len(tests)-1].held), 0o600)
	code, out, errOut := run("audit", "verify", "-checkpoint", held, "-pubkey", pub, file)
	if code != 0 || !strings.Contains(out, tests[len(tests)-1].note) || !strings.Contains(out, "reaches seq 6") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
