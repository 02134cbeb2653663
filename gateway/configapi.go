package gateway

import (
	"context"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
)

// configManager is the gateway as the API's configuration endpoints see it.
type configManager struct{ g *Gateway }

var _ api.ConfigManager = configManager{}

func (m configManager) Running() api.RunningConfig {
	m.g.mu.Lock()
	rc := m.g.run
	m.g.mu.Unlock()
	return api.RunningConfig{YAML: string(rc.text), SHA256: rc.sha256, Path: rc.path, AppliedAt: rc.appliedAt,
		RestartNeeded: rc.restart()}
}

func (m configManager) Check(_ context.Context, data []byte) api.ConfigResult {
	res, _ := m.g.Check(data)
	return result(res)
}

func (m configManager) Apply(ctx context.Context, data []byte, actor string, persist bool) (api.ConfigResult, error) {
	res, err := m.g.ApplyYAML(ctx, data, ApplyInfo{Actor: actor, WriteFile: persist, Transient: !persist})
	return result(res), err
}

func (m configManager) Reload(ctx context.Context, actor string) (api.ConfigResult, error) {
	res, err := m.g.Reload(ctx, actor)
	return result(res), err
}

// result is res in the API's terms.
func result(res Applied) api.ConfigResult {
	out := api.ConfigResult{Valid: res.Problems.Errors() == 0, Errors: problems(res.Problems), Diff: res.Text,
		Summary: res.Summary, RestartNeeded: res.Restart, SHA256: res.SHA256, Applied: res.Applied,
		NotPersisted: res.NotPersisted}
	return out
}

func problems(ps config.Problems) []api.ConfigProblem {
	out := make([]api.ConfigProblem, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.ConfigProblem{Line: p.Line, Key: p.Key, Message: p.Msg, Warning: p.Warning})
	}
	return out
}
