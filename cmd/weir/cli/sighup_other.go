//go:build !unix

package cli

import (
	"context"
	"log/slog"
)

// reloadOnHangup does nothing where there is no SIGHUP (Windows: use
// weir reload).
func reloadOnHangup(context.Context, reloader, *slog.Logger) (stop func()) { return func() {} }
