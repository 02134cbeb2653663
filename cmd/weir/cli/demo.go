package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"

	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/logcapture"
	"github.com/weir-edge/weir/sim"
)

// Demo defaults: the standard ports when free, else any free port.
const (
	demoBrokerAddr = "127.0.0.1:1883"
	demoHTTPAddr   = "127.0.0.1:8080"
	demoSimAddr    = "127.0.0.1:5020"
	demoNamespace  = "acme/plant1/filling/line1/filler"
	demoPrefix     = "weir/v1"
)

// runDemo runs the simulated plant, an embedded broker and the gateway,
// wired by a configuration generated from the plant's register map, so the
// demo goes through exactly the same loader and validation as a user's
// file.
func runDemo(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, firstNonEmpty(f.logLevel, "info"), firstNonEmpty(f.logFormat, "text"))
	if err != nil {
		return err
	}
	dataDir := f.dataDir
	if dataDir == "" {
		if dataDir, err = demoDataDir(); err != nil {
			return err
		}
	}
	defer logcapture.Install(log)() // library and log-package output as slog records
	if f.printConfig {
		text, err := demoConfig(firstNonEmpty(f.simListen, demoSimAddr), firstNonEmpty(f.brokerListen, demoBrokerAddr),
			firstNonEmpty(f.httpListen, demoHTTPAddr), demoPrefix, dataDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# weir run --print-config: the demo's configuration TEMPLATE, with the ports it asks for.\n"+
			"# A demo that finds one taken runs on a free one instead: its startup banner shows the ports in use, and\n"+
			"# GET /api/v1/config (or the web UI's Config page) the configuration it really runs.\n%s", text)
		return nil
	}
	defer privateUmask()() // data-dir files 0600, directories 0700
	if err := ensureDataDir(dataDir, ""); err != nil {
		return err
	}
	warnOpenDataDir(log, dataDir)
	simAddr, pinned := firstNonEmpty(f.simListen, demoSimAddr), f.simListen != ""
	if !pinned && !portFree(simAddr) {
		simAddr = "127.0.0.1:0"
	}
	s, err := sim.New(sim.Config{Listen: simAddr, Seed: int64(f.seed)}, log.With("component", "sim"))
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer s.Close()

	brokerAddr := firstNonEmpty(f.brokerListen, demoBrokerAddr)
	b, err := broker.Start(brokerAddr, log.With("component", "broker"))
	if err != nil && f.brokerListen == "" {
		b, err = broker.Start("127.0.0.1:0", log.With("component", "broker"))
	}
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer b.Close()

	httpLn, err := listenOrFallback(firstNonEmpty(f.httpListen, demoHTTPAddr), f.httpListen != "")
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	text, err := demoConfig(s.Addr(), b.Addr(), httpLn.Addr().String(), demoPrefix, dataDir)
	if err != nil {
		httpLn.Close()
		return err
	}
	cfg, err := config.Parse("demo.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("demo configuration: %w", err)
	}
	token, tokenEvents, err := demoToken(dataDir)
	if err != nil {
		httpLn.Close()
		return err
	}
	password, err := demoLogin(cfg)
	if err != nil {
		httpLn.Close()
		return err
	}
	host, port, _ := net.SplitHostPort(b.Addr())
	api := httpLn.Addr().String()
	fmt.Fprintf(stdout, `Weir demo: a simulated filling line → Weir → MQTT (unified namespace, JSON)
  web UI                      http://%s/ui/   user %s, password %s (new at each start)
  simulated PLC (Modbus TCP)  %s
  MQTT broker (embedded)      %s
  status, metrics (token)     http://%s/status  http://%s/metrics
  data dir (kept)             %s
Watch the data:
  mosquitto_sub -h %s -p %s -t '%s/#' -v
The API wants a token. This demo's admin token (shown once; weir alarms finds it in the data dir):
  export WEIR_TOKEN=%s
Current values:  curl -s -H "Authorization: Bearer $WEIR_TOKEN" http://%s/api/v1/values
Write a setpoint through the write gate (policy: 60..600, 10/min, at most 5/min per caller; audited):
  curl -s -H "Authorization: Bearer $WEIR_TOKEN" -H 'Content-Type: application/json' -d '{"path":"%s/speed_setpoint","value":300,"reason":"demo"}' http://%s/api/v1/write
Alarms:  weir alarms list --data-dir %s   (or: curl -s -H "Authorization: Bearer $WEIR_TOKEN" http://%s/api/v1/alarms)
  a speed_setpoint of 600 makes the filler vibrate above 4.5 mm/s: the rule raises filler_high_vibration
Check the write audit trail:     weir audit verify %s
Inspect the buffer (after stop): weir buffer list %s
The configuration used:          weir run --print-config --data-dir %s
Stop with Ctrl-C.

`, api, demoUIUser, password, s.Addr(), b.Addr(), api, api, dataDir, host, port, demoPrefix, token, api, demoNamespace, api, shellQuote(dataDir), api,
		shellQuote(filepath.Join(dataDir, "audit", "writes.jsonl")), shellQuote(dataDir), shellQuote(dataDir))
	err = runGateway(ctx, cfg, httpLn, log, tokenEvents...)
	if errors.Is(err, durable.ErrLocked) {
		return fmt.Errorf("%w\n  another demo is using %s: stop it, or give this one its own --data-dir", err, dataDir)
	}
	return err
}

// demoUIUser is the demo's web UI login, an admin.
const demoUIUser = "admin"

// demoLogin adds the local user admin with a fresh random password to the
// demo's configuration and returns the password, to be printed once: the
// demo opens with a login that works, and no password outlives its run
// (only the argon2id hash is held, in memory).
func demoLogin(cfg *config.Config) (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo login: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(b)
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", fmt.Errorf("demo login: %w", err)
	}
	if cfg.Auth == nil {
		cfg.Auth = &auth.Config{}
	}
	cfg.Auth.Users = append(cfg.Auth.Users, auth.User{Name: demoUIUser, Role: security.Admin, PasswordHash: hash})
	return password, nil
}

// demoUser owns the demo's token; each start revokes the previous one.
const demoUser = "demo"

// demoTokenLifetime bounds a demo token left behind.
const demoTokenLifetime = 7 * 24 * time.Hour

// demoToken makes a fresh admin token for this demo run, revoking the
// previous run's, and saves it as the data dir's CLI token. The events say
// so, for the gateway to record once its audit trail is open.
func demoToken(dataDir string) (string, []security.Event, error) {
	store, err := auth.OpenTokens(dataDir, nil)
	if err != nil {
		return "", nil, fmt.Errorf("demo token: %w", err)
	}
	now := time.Now()
	var evs []security.Event
	for _, t := range store.List() {
		if t.User == demoUser && t.State(now) == "active" {
			evs = append(evs, security.Event{Time: now, Kind: security.TokenRevoked, Severity: security.SeverityNotice,
				Actor: "demo", Component: "auth", Object: "token " + t.ID, Outcome: "ok",
				Detail: "the previous demo run's admin token, revoked at start"})
		}
	}
	if err := store.RevokeUser(demoUser); err != nil {
		return "", nil, fmt.Errorf("demo token: %w", err)
	}
	tok, info, err := store.Create(demoUser, security.Admin, demoTokenLifetime, "weir run (the demo)")
	if err != nil {
		return "", nil, fmt.Errorf("demo token: %w", err)
	}
	evs = append(evs, security.Event{Time: now, Kind: security.TokenCreated, Severity: security.SeverityNotice,
		Actor: "demo", Component: "auth", Object: "token " + info.ID, Outcome: "ok",
		Detail: "admin token for this demo run (" + demoTokenLifetime.String() + ")"})
	if err := writeCLIToken(dataDir, tok); err != nil {
		return "", nil, err
	}
	return tok, evs, nil
}

// shellQuote quotes s for a shell when it needs it.
func shellQuote(s string) string {
	if !strings.ContainsAny(s, " \t'\"$`\\*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// demoConfig renders the demo's configuration from the plant's register
// map: one device, one poll group at 1 s, an MQTT sink and the local historian.
func demoConfig(simAddr, brokerAddr, httpAddr, topicPrefix, dataDir string) (string, error) {
	tags, err := yaml.Marshal(sim.PlantTags())
	if err != nil {
		return "", fmt.Errorf("demo: register map: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by 'weir run' from the simulator's register map (sim.PlantTags).
node:
  id: weir-demo
data_dir: %q
http:
  listen: %q
# Writes to the plant are denied unless a policy allows them; every attempt
# is audited in <data_dir>/audit/writes.jsonl. The demo allows one setpoint.
write_policies:
  - match: %s/speed_setpoint
    allow: true
    callers: ["api:*"]   # any authenticated API user; the role check is the API's
    type: int
    min: 60
    max: 600
    max_rate: 10/min
    max_age: 5s
# Decide at the edge: an ISA-18.2 alarm when the filler vibrates too long
# (write speed_setpoint 600 to trip it; list and acknowledge with weir alarms).
rules:
  - name: high_vibration
    when: "vibration > 4.5"
    vars: {vibration: %s/vibration}
    for: 5s
    hysteresis: {deadband: 0.5}
    actions:
      - alarm: {name: filler_high_vibration, priority: high, message: "Filler vibration above 4.5 mm/s for 5 s"}
sources:
  - name: filling-line
    modbus:
      devices:
        - name: filler-plc
          address: %q
          unit_id: 1
          timeout: 1s
          namespace: %s
          groups:
            - interval: 1s
              tags:
`, dataDir, httpAddr, demoNamespace, demoNamespace, simAddr, demoNamespace)
	for _, line := range strings.Split(strings.TrimRight(string(tags), "\n"), "\n") {
		b.WriteString("                ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, `sinks:
  - name: uns
    # A disk buffer, kept in <data_dir>/buffers/uns between runs: try
    # weir buffer list <data_dir> after stopping the demo.
    buffer: {type: disk, max_bytes: 67108864, max_age: 24h, policy: drop_oldest}
    mqtt:
      url: tcp://%s
      client_id: weir-demo-%d
      topic_prefix: %s
      qos: 1
      retain: true
  - name: history
    # The local historian on this box: the web UI's trends, GET
    # /api/v1/history and weir history export read it.
    buffer: {type: disk, max_bytes: 67108864, max_age: 24h, policy: drop_oldest}
    historian:
      retention: 7d
      max_bytes: 268435456
`, brokerAddr, os.Getpid(), topicPrefix)
	return b.String(), nil
}
