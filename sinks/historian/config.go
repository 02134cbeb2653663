package historian

import (
	_ "embed"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// SampleConfig is a complete example of the `historian:` block, shown by
// the CLI.
//
//go:embed sample.yaml
var SampleConfig string

// Defaults, applied by setDefaults.
const (
	// DefaultMaxBytes bounds the disk when max_bytes is unset: a historian
	// on an edge box must never fill the disk the buffers also live on.
	DefaultMaxBytes int64 = 1 << 30
	// DefaultDataDir is used when neither dir nor the node's data_dir is set.
	DefaultDataDir = "/var/lib/weir"
	// DefaultMinFreeBytes is the free space the historian leaves on its
	// file system: below it Write refuses (retryable), so the durable
	// buffers on the same disk (their own reserve is 64 MiB) keep room to
	// hold what the historian cannot take.
	DefaultMinFreeBytes int64 = 256 << 20
	// minMaxBytes keeps a typo (max_bytes: 1000) from deleting every day.
	minMaxBytes int64 = 1 << 20
)

// Config is the `historian:` block of a sink.
type Config struct {
	// Dir holds one SQLite file per UTC day (default <data_dir>/historian).
	Dir string `yaml:"dir"`
	// Retention keeps this much history: "30d", "12h", "90d". Whole day
	// files older than it are deleted. Empty keeps days until max_bytes.
	Retention string `yaml:"retention"`
	// MaxBytes bounds the files under dir (default 1 GiB); over it the
	// oldest days are deleted first, never the newest one.
	MaxBytes int64 `yaml:"max_bytes"`
	// MinFreeBytes is the free space kept on the file system of dir
	// (default 256 MiB; -1 turns the check off): below it Write refuses
	// with a retryable error and the buffer in front keeps the samples.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// Compression decides which samples are stored (off by default: all
	// of them). See compress.go.
	Compression Compression `yaml:"compression"`
	// DataDir is the gateway's data directory, set by the configuration
	// loader; dir defaults to DataDir/historian.
	DataDir string `yaml:"-"`
}

// Validate checks the block without touching the disk.
func (c Config) Validate() error {
	var errs conf.Errors
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		errs.Addf("dir", "must be an absolute path, got %q", c.Dir)
	}
	if c.Retention != "" {
		if d, err := ParseRetention(c.Retention); err != nil {
			errs.Addf("retention", "%v", err)
		} else if d < 24*time.Hour {
			errs.Addf("retention", "must be at least one day (1d): history is kept in whole days, got %q", c.Retention)
		}
	}
	if c.MaxBytes < 0 {
		errs.Addf("max_bytes", "must not be negative")
	} else if c.MaxBytes != 0 && c.MaxBytes < minMaxBytes {
		errs.Addf("max_bytes", "must be at least %d (1 MiB), got %d", minMaxBytes, c.MaxBytes)
	}
	if c.MinFreeBytes < -1 {
		errs.Addf("min_free_bytes", "must be ≥ 0 (or -1 for no check), got %d", c.MinFreeBytes)
	}
	c.Compression.validate(&errs)
	return errs.Err()
}

func (c *Config) setDefaults() {
	if c.Dir == "" {
		d := c.DataDir
		if d == "" {
			d = DefaultDataDir
		}
		c.Dir = filepath.Join(d, "historian")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
}

// ParseRetention reads "30d" (days) or any Go duration ("36h").
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("want a whole number of days like 30d, got %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a duration like 30d or 36h, got %q", s)
	}
	return d, nil
}
