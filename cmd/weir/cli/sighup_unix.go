//go:build unix

package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// reloadOnHangup reloads the configuration file at every SIGHUP (the
// daemon convention) until ctx is done or stop is called.
func reloadOnHangup(ctx context.Context, r reloader, log *slog.Logger) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		reloadOn(ctx, r, sig, log)
	}()
	return func() {
		signal.Stop(sig)
		cancel()
		<-done
	}
}
