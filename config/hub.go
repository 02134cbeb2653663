package config

import (
	"net/url"
	"regexp"
	"time"

	"github.com/weir-edge/weir/internal/conf"
)

// Hub is the top-level hub block: this Weir is a site of a fleet and
// follows the desired configuration its hub publishes (fleet/agent). The
// site connects out only; nothing listens for the hub. The block itself
// belongs to the site's own file (or the command line): a configuration
// applied from the hub keeps the hub block the site started with.
type Hub struct {
	// URL of the hub's NATS: tls://host:4222 (nats:// only on a trusted
	// network); several, comma-separated, for a cluster.
	URL string `yaml:"url"`
	// Site is this site's id at the hub (lowercase letters, digits, '_', '-').
	Site string `yaml:"site"`
	// CredsFile is the NATS credentials file weir enroll wrote (0600);
	// default DATA_DIR/fleet/site.creds, where it writes it.
	CredsFile string `yaml:"creds_file"`
	// CAFile pins the CA the hub's certificate must chain to; default the
	// one weir enroll -ca kept (DATA_DIR/fleet/hub-ca.pem), else the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// ReportInterval is how often the site reports its health when
	// nothing changes; default 10s, at least 1s.
	ReportInterval time.Duration `yaml:"report_interval"`
	// Dwell is how long a new version must keep the site healthy before
	// it becomes the known-good one; default 30s.
	Dwell time.Duration `yaml:"dwell"`
}

// Defaults of the hub block.
const (
	DefaultHubReportInterval = 10 * time.Second
	DefaultHubDwell          = 30 * time.Second
)

// hubSiteID is what a site id may be: one NATS subject token.
var hubSiteID = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate checks the block without I/O (the files are read at start).
func (h *Hub) Validate() error {
	var errs conf.Errors
	if h.URL == "" {
		errs.Addf("url", "is required: the hub's NATS address, e.g. tls://hub.example:4222")
	} else {
		for _, one := range splitComma(h.URL) {
			u, err := url.Parse(one)
			switch {
			case err != nil || u.Host == "":
				errs.Addf("url", "%q is not a URL like tls://hub.example:4222", one)
			case u.Scheme != "tls" && u.Scheme != "nats":
				errs.Addf("url", "%q: use tls:// (or nats:// on a trusted network)", one)
			case u.User != nil:
				errs.Addf("url", "%q: put no credentials in the URL; use creds_file", one)
			}
		}
	}
	if !hubSiteID.MatchString(h.Site) {
		errs.Addf("site", "%q: use 1 to 64 lowercase letters, digits, '_' or '-'", h.Site)
	}
	if h.ReportInterval != 0 && h.ReportInterval < time.Second {
		errs.Addf("report_interval", "%s is too short (at least 1s)", h.ReportInterval)
	}
	if h.Dwell < 0 {
		errs.Addf("dwell", "must not be negative")
	}
	return errs.Err()
}

// ReportIntervalOrDefault is ReportInterval, or its default.
func (h *Hub) ReportIntervalOrDefault() time.Duration {
	if h.ReportInterval == 0 {
		return DefaultHubReportInterval
	}
	return h.ReportInterval
}

// DwellOrDefault is Dwell, or its default.
func (h *Hub) DwellOrDefault() time.Duration {
	if h.Dwell == 0 {
		return DefaultHubDwell
	}
	return h.Dwell
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
