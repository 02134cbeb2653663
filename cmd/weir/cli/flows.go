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
	"time"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/flows"
)

// flowsAbout says what flows shows, under its usage line in -h.
const flowsAbout = `Prints the data-flow map of a running gateway (GET /api/v1/flows): each
source with its samples/s; the shared processor chain; then one line per
sink with its kind, state, max_class, samples/s in → sent, bytes/s into
its route → out of it, bytes/s on the wire, buffer depth and route (lists
cut after two: "…+N more"); then each sink's totals: in = filtered +
denied (held back by classification) + chain in, chain out, written,
dropped, bytes. Rates are over the last ~10 s, or the time since a sink
restarted (a note says so). -json prints the API's answer, with the full
route. The token needs the viewer role.`

// defineFlows: weir flows [-json] [flags], the gateway found like weir
// alarms finds it (DATA_DIR/api.url, or -api).
func defineFlows(fs *flag.FlagSet) body {
	apiFlag := fs.String("api", "", "base URL of the gateway's HTTP API (default: the address the gateway wrote in its data dir)")
	dataDir := fs.String("data-dir", "", "the running gateway's data dir, where it writes its API address (default "+config.DefaultDataDir+", then the demo's)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	tokenFile := fs.String("token-file", "", "file holding the API token to send (default: $WEIR_TOKEN, then DATA_DIR/auth/cli-token)")
	asJSON := fs.Bool("json", false, "print the API's JSON answer instead of the map")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) != 0 {
			fmt.Fprintln(stderr, "weir flows: no arguments")
			return errUsage
		}
		ctx, base, client, err := gatewayTarget(ctx, "weir flows", *apiFlag, *dataDir, *tokenFile, *timeout, stderr)
		if err != nil {
			return err
		}
		defer client.CloseIdleConnections()
		var raw json.RawMessage
		err = alarmsCall(ctx, client, http.MethodGet, base.String()+"/api/v1/flows", nil, &raw)
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Errorf("no gateway answers at %s (%v); start it, or give the running one's --data-dir or -api URL", base.Host, opErr.Err)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			_, err = fmt.Fprintf(stdout, "%s\n", raw)
			return err
		}
		var m flows.Map
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("GET /api/v1/flows: bad answer: %w", err)
		}
		return flows.WriteText(stdout, m)
	}
}
