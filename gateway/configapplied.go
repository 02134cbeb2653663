package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// runningConfig is the configuration the gateway runs and how it came:
// the file (absolute) and its bytes, their SHA-256, and when it was
// applied. Without a file (the demo) the text is the configuration as
// used, in YAML — secrets are references in either, never values.
type runningConfig struct {
	cfg       *config.Config
	path      string // "" when built in
	text      []byte
	sha256    string
	appliedAt time.Time
	// boot is the configuration the process started with: what runs
	// for the keys only a restart applies.
	boot *config.Config
}

// restart lists the keys of rc that wait for a restart: those that
// differ from the configuration the process booted with.
func (rc runningConfig) restart() []string {
	if rc.boot == nil {
		return nil
	}
	return bootRestart(rc.boot, rc.cfg)
}

// builtIn names a configuration that came from no file.
const builtIn = "(built in: demo)"

func newRunningConfig(cfg *config.Config, path string, data []byte, now time.Time) runningConfig {
	rc := runningConfig{cfg: cfg, boot: cfg, appliedAt: now}
	if path != "" {
		// The record names the file wherever weir was started from.
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		rc.path = path
	}
	if data == nil {
		data, _ = yaml.Marshal(cfg) // secrets are references, never values
	}
	rc.text = data
	rc.sha256 = sha256Hex(data)
	return rc
}

// asText is what an apply of text — the configuration cfg marshalled,
// as GET /api/v1/config shows it — decodes to: the running configuration
// applies are compared against, so that posting the text back, or with
// one block edited, changes nothing else (cfg itself does not survive
// the round trip value for value). cfg when the text does not decode.
func (g *Gateway) asText(cfg *config.Config, text []byte) *config.Config {
	c, ps := config.Inspect("weir.yaml", text, config.Options{})
	if c == nil {
		g.log.Debug("the built-in configuration does not decode from its text; applies compare with it as built", "err", ps)
		return cfg
	}
	if g.opts.Adjust != nil {
		g.opts.Adjust(c)
	}
	return c
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// object is what config.applied names: the file, or builtIn.
func (rc runningConfig) object() string {
	if rc.path == "" {
		return builtIn
	}
	return rc.path
}

// configAppliedEvent is the config.applied record of a start or an
// apply: the file and the hash of exactly the bytes applied, so the audit
// trail says which configuration ran from when; an apply adds what
// changed — every line of the component-level diff (bounded by
// maxAuditDiffLines and maxAuditDiffBytes, then "… N more"), the keys that wait
// for a restart, and "not persisted" when the file was left as it was.
// The audit trail keeps up to audit.MaxConfigDetail of it.
func configAppliedEvent(rc runningConfig, actor, node string, res *Applied) security.Event {
	detail := "sha256 " + rc.sha256 + ", node " + node
	if res != nil {
		detail += ", changes: " + res.Summary
		if lines := boundLines(res.Diff.Lines(), maxAuditDiffLines, maxAuditDiffBytes); len(lines) > 0 {
			detail += "; diff: " + strings.Join(lines, "; ")
		}
		if len(res.Restart) > 0 {
			detail += "; restart needed for: " + strings.Join(res.Restart, ", ")
		}
		if res.NotPersisted {
			detail += "; not persisted: " + rc.path + " keeps the previous configuration; a restart runs that again"
		}
	}
	return security.Event{Time: time.Now(), Kind: security.ConfigApplied, Severity: security.SeverityNotice,
		Actor: actor, Component: "gateway", Object: rc.object(), Outcome: "ok", Detail: detail}
}

// The diff lines config.applied carries, at most.
const (
	maxAuditDiffLines = 64
	maxAuditDiffBytes = 4 << 10
)

// boundLines keeps lines up to n of them and b bytes, and says how many
// more there were.
func boundLines(lines []string, n, b int) []string {
	var out []string
	size := 0
	for i, l := range lines {
		if i == n || size+len(l)+1 > b {
			return append(out, fmt.Sprintf("… %d more", len(lines)-i))
		}
		out = append(out, l)
		size += len(l) + 1
	}
	return out
}

// configRefusedEvent records a configuration that was not applied: the
// hash of what was offered and why (the count and first problem; problem
// texts name keys and lines, never secret values).
func configRefusedEvent(object, actor, sha, why string) security.Event {
	return security.Event{Time: time.Now(), Kind: security.ConfigApplied, Severity: security.SeverityWarning,
		Actor: actor, Component: "gateway", Object: object, Outcome: "refused",
		Detail: "sha256 " + sha + ": " + why}
}
