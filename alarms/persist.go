package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateDoc is the state file: a version and the alarms as listed.
type stateDoc struct {
	Version int     `json:"version"`
	Alarms  []Alarm `json:"alarms"`
}

const stateVersion = 1

// load reads a state file; a missing file is an empty state.
func load(file string) (map[string]Alarm, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("state file %s: %w", file, err)
	}
	if doc.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, want %d", file, doc.Version, stateVersion)
	}
	out := make(map[string]Alarm, len(doc.Alarms))
	for _, a := range doc.Alarms {
		switch a.State {
		case Normal, Unack, Acked, RTNUnack:
		default:
			return nil, fmt.Errorf("state file %s: alarm %q has unknown state %q", file, a.Name, a.State)
		}
		out[a.Name] = a
	}
	return out, nil
}

// Save writes every alarm's state to the state file (write to a temporary
// file, fsync, rename), so a crash leaves the old or the new file, never a
// torn one. A no-op without a state file.
func (m *Manager) Save() error {
	if m.stateFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(stateDoc{Version: stateVersion, Alarms: m.List()}, "", "  ")
	if err != nil {
		return fmt.Errorf("alarms: encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(m.stateFile), 0o700); err != nil {
		return fmt.Errorf("alarms: save state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(m.stateFile), ".alarms-*.tmp")
	if err != nil {
		return fmt.Errorf("alarms: save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), m.stateFile)
	}
	if err != nil {
		return fmt.Errorf("alarms: save state %s: %w", m.stateFile, err)
	}
	return nil
}

// Run persists the state after transitions (coalesced: one write per
// burst) until ctx is done, then once more. Without a state file it just
// waits for ctx. Disk I/O happens here, never under the pipeline's lock.
func (m *Manager) Run(ctx context.Context) error {
	if m.stateFile == "" {
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			if err := m.Save(); err != nil {
				m.saveFailed.Add(1)
				return err
			}
			return nil
		case <-m.dirty:
			if err := m.Save(); err != nil {
				m.saveFailed.Add(1)
				m.log.Warn("alarm state not saved", "err", err)
			}
		}
	}
}
