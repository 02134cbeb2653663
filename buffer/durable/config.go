package durable

import (
	_ "embed"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/conf"
)

// SampleConfig is a complete example of the buffer block of a sink.
//
//go:embed sample.yaml
var SampleConfig string

// Fsync policies.
const (
	// FsyncAlways syncs every Push before it returns: nothing acknowledged
	// is lost, even to power loss. The default.
	FsyncAlways = "always"
	// FsyncGroup lets concurrent Pushes within GroupCommit share one sync;
	// each Push still returns only once a sync covered it.
	FsyncGroup = "group"
	// FsyncOS never syncs: the OS writes back when it likes. Power loss
	// loses the last seconds, a crash of the process the last moments
	// (Pebble holds unsynced WAL writes in memory briefly).
	FsyncOS = "os"
)

// Defaults applied to zero values.
const (
	DefaultGroupCommit  = 5 * time.Millisecond
	DefaultMinFreeBytes = 64 << 20
	// DefaultMaxBytes bounds a store whose config sets no bound at all.
	DefaultMaxBytes = 1 << 30
)

// Config configures one sink's durable buffer. Dir is filled by the
// gateway (<data_dir>/buffers/<sink name>), not by the user.
type Config struct {
	// Type selects the buffer: "disk" for this one. Kept here so that the
	// block decodes strictly as a whole.
	Type string `yaml:"type"`
	Dir  string `yaml:"dir"`
	// MaxBytes bounds the encoded samples held; default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxSamples bounds the samples held; 0 = no bound but MaxBytes.
	MaxSamples int `yaml:"max_samples"`
	// MaxAge drops samples older than this (by EdgeTime); 0 = keep.
	MaxAge time.Duration `yaml:"max_age"`
	// Policy when full: drop_oldest (default: the freshest data wins, the
	// loss counted and alarmed), block (back-pressure to the sources) or
	// drop_newest. Not block by default: a buffer that fills during a long
	// outage must not stop the sources, or local rules and alarms would go
	// blind exactly when the site runs on its own.
	Policy buffer.Policy `yaml:"policy"`
	// Fsync is always (default), group or os.
	Fsync string `yaml:"fsync"`
	// GroupCommit is the window concurrent Pushes share a sync in; default
	// 5ms, only with fsync: group.
	GroupCommit time.Duration `yaml:"group_commit"`
	// DrainRate caps the replay of the backlog in samples/s and interleaves
	// it with live data; 0 = no cap, strict FIFO.
	DrainRate float64 `yaml:"drain_rate"`
	// MinFreeBytes is the disk space kept free: below it the store counts
	// as full (disk_full); default 64 MiB.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
}

// Validate checks c without touching the disk.
func (c *Config) Validate() error {
	var errs conf.Errors
	switch c.Type {
	case "", "disk":
	default:
		errs.Addf("type", "unknown buffer type %q (want disk)", c.Type)
	}
	if c.MaxBytes < 0 {
		errs.Addf("max_bytes", "must not be negative")
	} else if c.MaxBytes > 0 && c.MaxBytes < 1<<20 {
		errs.Addf("max_bytes", "%d is below the minimum of 1 MiB (1048576)", c.MaxBytes)
	}
	if c.MaxSamples < 0 {
		errs.Addf("max_samples", "must not be negative")
	}
	if c.MaxAge < 0 {
		errs.Addf("max_age", "must not be negative")
	} else if c.MaxAge > 0 && c.MaxAge < time.Second {
		errs.Addf("max_age", "%s is below the minimum of 1s", c.MaxAge)
	}
	errs.AddPrefixed("policy", c.Policy.Validate())
	switch c.Fsync {
	case "", FsyncAlways, FsyncGroup, FsyncOS:
	default:
		errs.Addf("fsync", "unknown fsync policy %q (want always, group or os)", c.Fsync)
	}
	if c.GroupCommit < 0 || c.GroupCommit > time.Second {
		errs.Addf("group_commit", "must be between 0 and 1s")
	}
	if c.DrainRate < 0 {
		errs.Addf("drain_rate", "must not be negative")
	}
	if c.MinFreeBytes < 0 {
		errs.Addf("min_free_bytes", "must not be negative")
	}
	return errs.Err()
}

// setDefaults fills zero values; the one place defaults live.
func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Policy == "" {
		c.Policy = buffer.DropOldest
	}
	if c.Fsync == "" {
		c.Fsync = FsyncAlways
	}
	if c.GroupCommit == 0 {
		c.GroupCommit = DefaultGroupCommit
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
}
