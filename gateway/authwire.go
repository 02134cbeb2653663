package gateway

import (
	"fmt"
	"log/slog"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// buildAuth builds the API's authenticator. Without an auth block the API
// still requires credentials: API tokens (weir token create) need no
// configuration.
func buildAuth(cfg *config.Config, events security.Recorder, log *slog.Logger) (*auth.Authenticator, error) {
	var ac auth.Config
	if cfg.Auth != nil {
		ac = *cfg.Auth
	}
	a, err := auth.New(ac, auth.Options{DataDir: cfg.DataDirOrDefault(), Events: events, Log: log.With("component", "auth")})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return a, nil
}
