package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weir-edge/weir/fleet/hub"
)

// defaultHubDataDir is where `weir hub` keeps its keys and, with the
// embedded server, its JetStream state.
const defaultHubDataDir = "/var/lib/weir-hub"

const hubAbout = `The hub is the fleet's control plane (docs/fleet.md): it keeps the desired state of every site in NATS
JetStream and signs it. "weir hub run" starts it (an embedded NATS server, or -nats-url for an existing one);
the other actions talk to the running hub with the identity in its data dir (DATA_DIR/keys, 0600).`

func hubVerbs() []verb {
	return []verb{
		{name: "run", args: "[flags]", summary: "run the hub (embedded NATS with JetStream, or -nats-url)", define: defineHubRun},
		{name: "init", args: "[-data-dir D]", summary: "create the hub's keys and the nats-resolver.conf an external NATS includes", define: defineHubInit},
		{name: "publish", args: "-layer base|group:G|site:S [-file FILE] [flags]", summary: "store a configuration layer and sign the new version of every site it changes", define: defineHubPublish},
		{name: "site", args: "[-site S (-groups G1,G2 | -revoke)] [flags]", summary: "set a site's groups (re-renders it), revoke its credentials, or list the sites", define: defineHubSite},
		{name: "token", args: "-site S [-groups G1,G2] [-ttl 24h] [flags]", summary: "print a one-time enrolment token for a site", define: defineHubToken},
		{name: "seal", args: "-site S [flags] < secret", summary: "encrypt a secret (stdin) to an enrolled site's key and print the ${sealed:…} to put in its layer", define: defineHubSeal},
		{name: "keys", args: "[rotate] [flags]", summary: "print the bundle signing key, or rotate it (a signed statement sites follow)", define: defineHubKeys},
		{name: "audit", args: "[-from N] [flags]", summary: "print the hub's audit trail (JSON lines), checking its hash chain", define: defineHubAudit},
	}
}

// hubConn holds the flags every action but run shares.
type hubConn struct {
	dataDir, natsURL, tlsCA *string
}

func hubConnFlags(fs *flag.FlagSet) hubConn {
	return hubConn{
		dataDir: fs.String("data-dir", defaultHubDataDir, "the hub's data dir (its keys/)"),
		natsURL: fs.String("nats-url", "", "NATS URL of the hub (default: the one the running hub wrote in its data dir)"),
		tlsCA:   fs.String("tls-ca", "", "CA file to verify a TLS NATS by (default: DATA_DIR/tls/ca.pem when present)"),
	}
}

func (c hubConn) dial(ctx context.Context) (*hub.Hub, error) {
	return hub.Dial(ctx, hub.Config{DataDir: *c.dataDir, NATSURL: *c.natsURL, TLSCA: *c.tlsCA})
}

func defineHubRun(fs *flag.FlagSet) body {
	configFile := fs.String("config", "", "YAML file with the hub's settings (fleet/hub/sample.yaml); flags given override it")
	dataDir := fs.String("data-dir", defaultHubDataDir, "keys/ (the hub's identity, shared by replicas) and jetstream/")
	listen := fs.String("listen", "127.0.0.1:4222", "client address of the embedded NATS server (sites connect here)")
	natsURL := fs.String("nats-url", "", "use this NATS (cluster) instead of the embedded server; it must include DATA_DIR/keys/nats-resolver.conf")
	tlsCert := fs.String("tls-cert", "", "TLS certificate of the embedded server's listener")
	tlsKey := fs.String("tls-key", "", "its private key")
	tlsAuto := fs.Bool("tls-auto", false, "make a private CA and server certificate once in DATA_DIR/tls (sites pin tls/ca.pem)")
	tlsCA := fs.String("tls-ca", "", "CA to verify -nats-url by")
	replicas := fs.Int("replicas", 1, "JetStream replicas of the buckets and streams: 1, or 3 on a 3-node cluster (the default with -cluster-listen)")
	clusterListen := fs.String("cluster-listen", "", "join the embedded servers of 3 replicas into one NATS cluster: this node's route address")
	routes := fs.String("routes", "", "with -cluster-listen: the other nodes, nats-route://host:port,nats-route://…")
	replica := fs.String("replica", "", "name of this replica in the audit trail (default host-pid)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub run: no arguments (the settings are flags or -config)")
			return errUsage
		}
		var cfg hub.Config
		if *configFile != "" {
			var err error
			if cfg, err = hub.LoadConfig(*configFile); err != nil {
				return err
			}
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		override := func(name string, dst *string, v string) {
			if set[name] || *dst == "" {
				*dst = v
			}
		}
		override("data-dir", &cfg.DataDir, *dataDir)
		override("listen", &cfg.Listen, *listen)
		override("nats-url", &cfg.NATSURL, *natsURL)
		override("tls-cert", &cfg.TLSCert, *tlsCert)
		override("tls-key", &cfg.TLSKey, *tlsKey)
		override("tls-ca", &cfg.TLSCA, *tlsCA)
		override("replica", &cfg.Replica, *replica)
		override("cluster-listen", &cfg.Cluster.Listen, *clusterListen)
		if set["routes"] || len(cfg.Cluster.Routes) == 0 {
			cfg.Cluster.Routes = splitGroups(*routes)
		}
		if set["replicas"] || (cfg.Replicas == 0 && cfg.Cluster.Listen == "") {
			cfg.Replicas = *replicas
		}
		if set["tls-auto"] {
			cfg.TLSAuto = *tlsAuto
		}
		log, err := newLogger(stderr, *logLevel, "text")
		if err != nil {
			return err
		}
		cfg.Logger = log
		h, err := hub.Open(ctx, cfg)
		if err != nil {
			return err
		}
		defer h.Close()
		kid, err := h.KeyID(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "weir hub: NATS %s\n", h.URL())
		fmt.Fprintf(stdout, "  enrolment creds: %s (give to installers: it may only ask to enrol)\n", h.EnrollCredsPath())
		fmt.Fprintf(stdout, "  bundle signing key: %s\n", kid)
		if ca := hub.CAPath(cfg.DataDir); fileExists(ca) && cfg.NATSURL == "" {
			fp, _ := hub.CAFingerprint(ca)
			fmt.Fprintf(stdout, "  TLS CA (sites pin it): %s %s\n", ca, fp)
		}
		<-ctx.Done()
		log.Info("hub stopping")
		return nil
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func defineHubInit(fs *flag.FlagSet) body {
	dataDir := fs.String("data-dir", defaultHubDataDir, "where the keys go (DATA_DIR/keys, 0600)")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub init: flags only")
			return errUsage
		}
		conf, err := hub.Init(*dataDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "hub keys in %s\n", filepath.Dir(conf))
		fmt.Fprintf(stdout, "for an external nats-server: add `include %q` (with jetstream enabled), then weir hub run -nats-url URL\n", conf)
		return nil
	}
}

func defineHubPublish(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	layer := fs.String("layer", "", "base, group:NAME or site:ID")
	file := fs.String("file", "-", "the layer (a partial Weir configuration); - reads stdin")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if *layer == "" || len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub publish: -layer is required; the layer is -file (or stdin)")
			return errUsage
		}
		ref, err := hub.ParseLayerRef(*layer)
		if err != nil {
			return err
		}
		var data []byte
		if *file == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1))
		} else {
			data, err = os.ReadFile(*file)
		}
		if err != nil {
			return err
		}
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		res, err := h.Publish(ctx, ref, data)
		sites := make([]string, 0, len(res.Versions))
		for s := range res.Versions {
			sites = append(sites, s)
		}
		slices.Sort(sites)
		for _, s := range sites {
			fmt.Fprintf(stdout, "%s\tversion %d\n", s, res.Versions[s])
		}
		if len(res.Unchanged) > 0 {
			fmt.Fprintf(stdout, "unchanged: %s\n", strings.Join(res.Unchanged, " "))
		}
		return err
	}
}

func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

func defineHubSite(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	site := fs.String("site", "", "the site's id (lowercase letters, digits, '_', '-')")
	groups := fs.String("groups", "", "its groups, comma-separated (replaces the list; \"\" with -site clears it)")
	revoke := fs.Bool("revoke", false, "revoke the site's credentials now (closes its connections; it must enrol again)")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub site: flags only")
			return errUsage
		}
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		if *site == "" {
			sites, err := h.Sites(ctx)
			if err != nil {
				return err
			}
			for _, s := range sites {
				b, _ := h.Desired(ctx, s.ID)
				v := "-"
				if b != nil {
					v = fmt.Sprint(b.Version)
				}
				enrolled := s.Record.EnrolledAt
				if enrolled == "" {
					enrolled = "not enrolled"
				}
				fmt.Fprintf(stdout, "%s\tgroups=%s\tversion=%s\t%s\n", s.ID, strings.Join(s.Record.Groups, ","), v, enrolled)
			}
			return nil
		}
		if *revoke {
			return h.RevokeSite(ctx, *site)
		}
		return h.SetGroups(ctx, *site, splitGroups(*groups))
	}
}

func defineHubToken(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	site := fs.String("site", "", "the site the token enrols")
	groups := fs.String("groups", "", "its groups, comma-separated (default: keep what the hub has)")
	ttl := fs.Duration("ttl", hub.DefaultTokenTTL, "how long the token may be used (once)")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if *site == "" || len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub token: -site is required")
			return errUsage
		}
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		var gs []string
		if *groups != "" {
			gs = splitGroups(*groups)
		}
		tok, err := h.CreateToken(ctx, *site, gs, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintf(stderr, "one-time token for site %s, valid until %s; it is not shown again\n", *site,
			time.Now().Add(*ttl).UTC().Format(time.RFC3339))
		return nil
	}
}

func defineHubSeal(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	site := fs.String("site", "", "the enrolled site that alone can open it")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if *site == "" || len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub seal: -site is required; the secret is read from stdin (never an argument)")
			return errUsage
		}
		value, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10+1))
		if err != nil {
			return err
		}
		value = []byte(strings.TrimRight(string(value), "\r\n"))
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		ref, err := h.Seal(ctx, *site, value)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, ref)
		return nil
	}
}

func defineHubKeys(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 1 || (len(pos) == 1 && pos[0] != "rotate") {
			fmt.Fprintln(stderr, "weir hub keys: nothing (print the key) or rotate")
			return errUsage
		}
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		if len(pos) == 0 {
			kid, err := h.KeyID(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, kid)
			return nil
		}
		kid, err := h.RotateKey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", kid)
		fmt.Fprintln(stderr, "new bundles are signed by this key; sites follow the signed statements on weir.trust")
		return nil
	}
}

func defineHubAudit(fs *flag.FlagSet) body {
	conn := hubConnFlags(fs)
	from := fs.Uint64("from", 1, "first entry")
	max := fs.Int("max", 100000, "at most this many entries")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintln(stderr, "weir hub audit: flags only")
			return errUsage
		}
		h, err := conn.dial(ctx)
		if err != nil {
			return err
		}
		defer h.Close()
		entries, err := h.ReadAudit(ctx, *from, *max)
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			_ = enc.Encode(e)
		}
		if err != nil {
			return fmt.Errorf("audit chain broken: %w", err)
		}
		fmt.Fprintf(stderr, "%d entries, hash chain intact\n", len(entries))
		return nil
	}
}
