package soak

import (
	"fmt"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// statusToken creates a viewer token in the gateway's data dir, for
// reading its /status (every route but /healthz and /readyz wants one).
func statusToken(dataDir string) (string, error) {
	store, err := auth.OpenTokens(dataDir, nil)
	if err != nil {
		return "", fmt.Errorf("soak token: %w", err)
	}
	tok, _, err := store.Create("soak", security.Viewer, 30*24*time.Hour, "weir soak harness")
	if err != nil {
		return "", fmt.Errorf("soak token: %w", err)
	}
	return tok, nil
}
