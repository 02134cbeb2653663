package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// warnInsecure repeats, at every start, each insecure setting the file
// accepts explicitly (allow_insecure, insecure_skip_verify, an sslmode
// that does not verify the server): once in the log as a warning with its
// key, and once as a security.InsecureTransport event, so that the SOC
// sees a gateway that runs below its security level without reading logs.
// A file with such a setting that is not allowed never gets here: it does
// not load.
func warnInsecure(ctx context.Context, cfg *config.Config, log *slog.Logger, rec security.Recorder) {
	for _, w := range cfg.InsecureWarnings() {
		log.Warn("insecure transport", "key", w.Path, "problem", w.Err.Error())
		component := componentName(cfg, w.Path)
		rec.Record(ctx, security.Event{
			Time:      time.Now(),
			Kind:      security.InsecureTransport,
			Severity:  security.SeverityWarning,
			Component: component,
			Object:    w.Path,
			Outcome:   "ok",
			Detail:    w.Err.Error(),
		})
	}
}

// componentName names the block at path as the SOC knows it: the source's
// or sink's name, else the top-level key (write_commands, alarms).
func componentName(cfg *config.Config, path string) string {
	top, _, _ := strings.Cut(path, ".")
	var i int
	switch {
	case scanIndex(top, "sources[", &i) && i < len(cfg.Sources):
		return cfg.Sources[i].Name
	case scanIndex(top, "sinks[", &i) && i < len(cfg.Sinks):
		return cfg.Sinks[i].Name
	}
	return top
}

func scanIndex(s, prefix string, i *int) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || !strings.HasSuffix(rest, "]") {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	*i = n
	return err == nil && n >= 0
}
