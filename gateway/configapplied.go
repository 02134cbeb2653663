package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
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
	// restart lists keys changed by a reload that wait for a restart.
	restart []string
}

// builtIn names a configuration that came from no file.
const builtIn = "(built in: demo)"

func newRunningConfig(cfg *config.Config, path string, data []byte, now time.Time) runningConfig {
	rc := runningConfig{cfg: cfg, appliedAt: now}
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

// configAppliedEvent is the config.applied record of a start or a
// reload: the file and the hash of exactly the bytes applied, so the
// audit trail says which configuration ran from when; a reload adds the
// summary of what changed.
func configAppliedEvent(rc runningConfig, actor, node, diff string) security.Event {
	detail := "sha256 " + rc.sha256 + ", node " + node
	if diff != "" {
		detail += ", changes: " + diff
	}
	return security.Event{Time: time.Now(), Kind: security.ConfigApplied, Severity: security.SeverityNotice,
		Actor: actor, Component: "gateway", Object: rc.object(), Outcome: "ok", Detail: detail}
}

// configRefusedEvent records a configuration that was not applied: the
// hash of what was offered and why (the count and first problem; problem
// texts name keys and lines, never secret values).
func configRefusedEvent(object, actor, sha, why string) security.Event {
	return security.Event{Time: time.Now(), Kind: security.ConfigApplied, Severity: security.SeverityWarning,
		Actor: actor, Component: "gateway", Object: object, Outcome: "refused",
		Detail: "sha256 " + sha + ": " + why}
}
