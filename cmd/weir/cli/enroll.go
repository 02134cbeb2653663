package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/fleet/agent"
)

// hubCAFile is where weir enroll keeps the hub's CA it was given, under
// DATA_DIR/fleet: weir run pins it when the hub block names none.
const hubCAFile = "hub-ca.pem"

// defineEnroll: weir enroll -hub URL -site ID -token T [-enroll-creds FILE]
// [-ca FILE] [-data-dir DIR]. The site's keys are made here; only their
// public halves go to the hub.
func defineEnroll(fs *flag.FlagSet) body {
	hubURL := fs.String("hub", "", "the hub's NATS URL, e.g. tls://hub.example:4222")
	site := fs.String("site", "", "this site's id at the hub")
	token := fs.String("token", "", "the one-time enrolment token (weir hub token on the hub)")
	enrollCreds := fs.String("enroll-creds", "", "the enrolment creds file the hub's operator handed out")
	ca := fs.String("ca", "", "the hub's CA certificate to pin (the hub's tls/ca.pem with -tls-auto); copied into the data dir")
	dataDir := fs.String("data-dir", "", "state directory receiving fleet/ (default "+config.DefaultDataDir+")")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 || *hubURL == "" || *site == "" || *token == "" {
			fmt.Fprintln(stderr, "weir enroll: -hub, -site and -token are required, and nothing else")
			return errUsage
		}
		dir := firstNonEmpty(*dataDir, config.DefaultDataDir)
		defer privateUmask()()
		files := agent.SiteFiles(dir)
		var caData []byte
		if *ca != "" {
			var err error
			if caData, err = os.ReadFile(*ca); err != nil {
				return fmt.Errorf("hub CA: %w", err)
			}
		}
		r, err := agent.Enroll(ctx, agent.EnrollOptions{URL: *hubURL, Site: *site, Token: *token, EnrollCreds: *enrollCreds,
			CAFile: *ca, Files: files})
		if err != nil {
			return fmt.Errorf("weir enroll: %w", err)
		}
		if caData != nil {
			if err := os.WriteFile(filepath.Join(files.Dir, hubCAFile), caData, 0o600); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "enrolled site %s (groups %v)\n  credentials: %s\n  pinned hub keys and known-good store: %s\n", *site, r.Groups, files.Creds(), files.Store())
		fmt.Fprintf(stdout, "run it with: weir run --hub %s --site %s --data-dir %s FILE   (or a hub: block in FILE)\n", *hubURL, *site, dir)
		return nil
	}
}
