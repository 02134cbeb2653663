package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/fleet/agent"
	"github.com/weir-edge/weir/gateway"
)

// hubBlock is the hub block weir run follows: the file's, with the
// --hub, --site and --creds flags over it; nil when neither says to
// follow a hub. creds_file and ca_file default to what weir enroll wrote
// under DATA_DIR/fleet.
func hubBlock(f runFlags, cfg *config.Config) (*config.Hub, error) {
	if cfg.Hub == nil && f.hubURL == "" && f.hubSite == "" && f.hubCreds == "" {
		return nil, nil
	}
	h := config.Hub{}
	if cfg.Hub != nil {
		h = *cfg.Hub
	}
	h.URL = firstNonEmpty(f.hubURL, h.URL)
	h.Site = firstNonEmpty(f.hubSite, h.Site)
	files := agent.SiteFiles(cfg.DataDirOrDefault())
	h.CredsFile = firstNonEmpty(f.hubCreds, h.CredsFile, files.Creds())
	if h.CAFile == "" {
		if ca := filepath.Join(files.Dir, hubCAFile); fileExists(ca) {
			h.CAFile = ca
		}
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("hub (file block and --hub/--site/--creds): %w", err)
	}
	return &h, nil
}

// runFollowing runs g and the site agent that follows the hub h; both
// stop when ctx ends or the gateway does. Without the hub the gateway
// runs on its last known-good configuration.
func runFollowing(ctx context.Context, g *gateway.Gateway, h *config.Hub, dataDir string, log *slog.Logger) error {
	files := agent.SiteFiles(dataDir)
	store, secrets, err := agent.OpenSite(files, h.Site)
	if err == nil && !fileExists(h.CredsFile) {
		err = fmt.Errorf("hub.creds_file %s: no such file (enrol the site first: weir enroll)", h.CredsFile)
	}
	var a *agent.Agent
	if err == nil {
		a, err = agent.New(agent.Options{Site: h.Site, URL: h.URL, CredsFile: h.CredsFile, CAFile: h.CAFile, Store: store,
			Secrets: secrets, Target: agent.Gateway(g), ReportInterval: h.ReportIntervalOrDefault(), Dwell: h.DwellOrDefault(),
			Logger: log})
	}
	if err != nil {
		g.Close()
		return fmt.Errorf("fleet: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var agentErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if agentErr = a.Run(ctx); agentErr != nil {
			cancel() // the agent could not start: stop rather than run unmanaged unnoticed
		}
	}()
	err = g.Run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(err, agentErr)
}
