package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// configSourceKey carries the configuration file's path and the SHA-256
// of its bytes from runFile to runGateway, whose signature the other
// ways in (the demo, tests) share.
type configSourceKey struct{}

type configSource struct{ path, sha256 string }

func withConfigSource(ctx context.Context, path string, data []byte) context.Context {
	// The record names the file wherever weir was started from.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	sum := sha256.Sum256(data)
	return context.WithValue(ctx, configSourceKey{}, configSource{path: path, sha256: hex.EncodeToString(sum[:])})
}

// configAppliedEvent is the config.applied record of a gateway start: the
// file and the hash of exactly the bytes read, so the audit trail says
// which configuration ran from when. Without a file (the demo) the hash
// is of the configuration as used, in YAML.
func configAppliedEvent(ctx context.Context, cfg *config.Config, node string) security.Event {
	src, ok := ctx.Value(configSourceKey{}).(configSource)
	if !ok {
		data, _ := yaml.Marshal(cfg) // secrets are references, never values
		sum := sha256.Sum256(data)
		src = configSource{path: "(built in: demo)", sha256: hex.EncodeToString(sum[:])}
	}
	return security.Event{Time: time.Now(), Kind: security.ConfigApplied, Severity: security.SeverityNotice,
		Actor: "cli", Component: "gateway", Object: src.path, Outcome: "ok",
		Detail: "sha256 " + src.sha256 + ", node " + node}
}
