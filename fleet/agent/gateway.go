package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/weir-edge/weir/gateway"
)

// Gateway is the Target of a real gateway: applies go through
// gateway.ApplyYAML (validation, hot reload of what changed, the
// config.applied audit record), after Run has started it.
func Gateway(g *gateway.Gateway) Target { return gatewayTarget{g} }

type gatewayTarget struct{ g *gateway.Gateway }

var _ Target = gatewayTarget{}

func (t gatewayTarget) Apply(ctx context.Context, data []byte, actor string) error {
	if err := t.g.WaitRunning(ctx); err != nil {
		return err
	}
	res, err := t.g.ApplyYAML(ctx, data, gateway.ApplyInfo{Actor: actor})
	if err != nil && res.Problems.Errors() > 0 {
		var first []string
		for _, p := range res.Problems {
			if len(first) == 3 {
				break
			}
			first = append(first, p.Error())
		}
		return fmt.Errorf("%w: %s", err, strings.Join(first, "; "))
	}
	return err
}

func (t gatewayTarget) Running() []byte { return t.g.RunningText() }

func (t gatewayTarget) State() gateway.FleetState { return t.g.FleetState() }
