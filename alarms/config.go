package alarms

import (
	"path/filepath"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// Defaults applied by New to keys left out.
const (
	DefaultPrefix     = "weir"
	DefaultMaxShelve  = 24 * time.Hour
	DefaultMaxPending = 10_000
)

// Config is the top-level `alarms:` block. Alarms themselves are defined
// by rules (an `alarm:` action); this block says where their events go
// and how long they may be shelved.
type Config struct {
	// Prefix of the event paths: every transition of alarm N is a sample
	// on <prefix>/_alarms/N. Default "weir".
	Prefix string `yaml:"prefix"`
	// MaxShelve caps how long an alarm may be shelved (ISA-18.2 shelving
	// is time-limited). Default 24h.
	MaxShelve time.Duration `yaml:"max_shelve"`
	// MaxPending bounds the events waiting for the pipeline (transitions
	// from the API or MQTT between two engine ticks); beyond it events are
	// dropped and counted. Default 10000.
	MaxPending int `yaml:"max_pending"`
	// StateFile, when set, persists alarm states across restarts (JSON,
	// written after transitions by Run). A relative path is under
	// data_dir; see StateFilePath.
	StateFile string `yaml:"state_file"`
	// Commands subscribes to an MQTT command topic for acknowledgements;
	// nil disables it.
	Commands *CommandsConfig `yaml:"commands"`
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxShelve == 0 {
		c.MaxShelve = DefaultMaxShelve
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
}

// Validate checks the block as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if c.Prefix != "" {
		if err := model.ValidatePath(c.Prefix); err != nil {
			errs.Add(conf.Errorf("prefix", "%w", err))
		}
	}
	if c.MaxShelve < 0 {
		errs.Addf("max_shelve", "must not be negative")
	}
	if c.MaxPending < 0 {
		errs.Addf("max_pending", "must not be negative")
	}
	if c.Commands != nil {
		errs.AddPrefixed("commands", c.Commands.Validate())
	}
	return errs.Err()
}

// StateFilePath resolves state_file against the node's data directory;
// "" when persistence is off.
func (c *Config) StateFilePath(dataDir string) string {
	if c.StateFile == "" || filepath.IsAbs(c.StateFile) {
		return c.StateFile
	}
	return filepath.Join(dataDir, c.StateFile)
}

// Priorities, lowest first.
const (
	Low      Priority = "low"
	Medium   Priority = "medium"
	High     Priority = "high"
	Critical Priority = "critical"
)

// Priority ranks how urgently an operator must respond.
type Priority string

// Valid reports whether p is one of the four priorities.
func (p Priority) Valid() bool {
	switch p {
	case Low, Medium, High, Critical:
		return true
	}
	return false
}

// ValidName checks an alarm name: one path level of letters, digits, '_',
// '-' and '.', at most 128 bytes, so that it is a safe MQTT topic level
// and URL path segment.
func ValidName(name string) error {
	if name == "" {
		return errEmptyName
	}
	if len(name) > 128 {
		return errLongName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return errBadName
		}
	}
	if name == "." || name == ".." {
		return errBadName
	}
	return nil
}
