package cli

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
)

// warnOpenDataDir warns when users other than the gateway's own may enter
// or list the data dir: Weir creates its files 0600 and directories 0700,
// but a data dir made by hand (mkdir /var/lib/weir, a container volume) is
// often 0755, and what it holds — the audit trail, buffered plant data,
// keys, tokens — should not be readable by any local account. Weir warns
// rather than changing the mode itself: the directory belongs to whoever
// made it, and some sites share it with a backup group on purpose.
func warnOpenDataDir(log *slog.Logger, dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return // ensureDataDir has said what is wrong
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		log.Warn("data directory is accessible by other users; make it private with chmod 700",
			"data_dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
}
