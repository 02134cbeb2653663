package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
)

// reloadAbout says what reload does, under its usage line in -h.
const reloadAbout = `Asks the running gateway to re-read its configuration file and apply it live,
as SIGHUP does: unchanged sources and sinks keep their connections and
buffers, changed ones restart alone. An invalid file is refused with every
problem and the running configuration stays. Keys that only a restart
applies (http, auth, data_dir, ...) are listed. The token needs the
engineer role. Exit status 1 when nothing was applied.`

// defineReload: weir reload [flags], the gateway found like weir alarms
// finds it (DATA_DIR/api.url, or -api).
func defineReload(fs *flag.FlagSet) body {
	apiFlag := fs.String("api", "", "base URL of the gateway's HTTP API (default: the address the gateway wrote in its data dir)")
	dataDir := fs.String("data-dir", "", "the running gateway's data dir, where it writes its API address (default "+config.DefaultDataDir+", then the demo's)")
	timeout := fs.Duration("timeout", time.Minute, "request timeout (a reload waits for removed sources to stop)")
	tokenFile := fs.String("token-file", "", "file holding the API token to send (default: $WEIR_TOKEN, then DATA_DIR/auth/cli-token)")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) != 0 {
			fmt.Fprintln(stderr, "weir reload: no arguments (the gateway re-reads the file it runs from)")
			return errUsage
		}
		ctx, base, client, err := gatewayTarget(ctx, "weir reload", *apiFlag, *dataDir, *tokenFile, *timeout, stderr)
		if err != nil {
			return err
		}
		defer client.CloseIdleConnections()
		err = reloadCall(ctx, client, base.String(), stdout)
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Errorf("no gateway answers at %s (%v); start it, or give the running one's --data-dir or -api URL", base.Host, opErr.Err)
		}
		return err
	}
}

// reloadCall posts /api/v1/config/reload and prints the outcome: what
// changed and what waits for a restart, or every problem of the file.
func reloadCall(ctx context.Context, client *http.Client, base string, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/config/reload", nil)
	if err != nil {
		return err
	}
	setBearer(ctx, req)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnprocessableEntity:
		var res api.ConfigResult
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("reload: bad answer: %w", err)
		}
		for _, p := range res.Errors {
			kind := "error"
			if p.Warning {
				kind = "warning"
			}
			fmt.Fprintf(stdout, "line %d: %s: %s: %s\n", p.Line, p.Key, kind, p.Message)
		}
		if resp.StatusCode != http.StatusOK {
			return errors.New("configuration refused; the running one stays")
		}
		fmt.Fprintf(stdout, "applied sha256 %s\nchanges: %s\n", res.SHA256, res.Summary)
		if len(res.RestartNeeded) > 0 {
			fmt.Fprintf(stdout, "restart needed for: %s\n", strings.Join(res.RestartNeeded, ", "))
		}
		return nil
	case http.StatusUnauthorized:
		return fmt.Errorf("%s: the gateway wants a token: give -token-file FILE or $WEIR_TOKEN, or save one as DATA_DIR/auth/cli-token with weir token create -cli", resp.Status)
	case http.StatusForbidden:
		return fmt.Errorf("%s: reloading needs a token with the engineer role", resp.Status)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	return fmt.Errorf("reload: %s", resp.Status)
}
