package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"gopkg.in/yaml.v3"
)

// Config is how a hub replica starts. The zero value of each field is its
// default (see setDefaults); sample.yaml shows them.
type Config struct {
	// DataDir holds keys/ (the hub's identity, shared by its replicas)
	// and, for the embedded server, jetstream/.
	DataDir string `yaml:"data_dir"`
	// Listen is the embedded NATS server's client address ("host:port",
	// port 0 for a random one). Ignored with NATSURL.
	Listen string `yaml:"listen"`
	// NATSURL connects to an existing NATS (cluster) instead of starting
	// one; it must trust the hub's operator (keys/nats-resolver.conf).
	NATSURL string `yaml:"nats_url"`
	// TLSCert and TLSKey turn on TLS on the embedded server's listener.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSAuto makes a private CA and server certificate once in
	// DATA_DIR/tls (sites pin tls/ca.pem) when no tls_cert is given.
	TLSAuto bool `yaml:"tls_auto"`
	// TLSCA is the CA to verify an external NATS by (NATSURL with tls://).
	TLSCA string `yaml:"tls_ca"`
	// Cluster makes the embedded server one node of a NATS cluster of hub
	// replicas (three, each with its own data dir and a copy of keys/).
	Cluster ClusterConfig `yaml:"cluster"`
	// Replicas is the JetStream replication of the buckets and streams
	// (1, or 3 on a 3-node NATS cluster).
	Replicas int `yaml:"replicas"`
	// Replica names this process in the audit trail (default: host-pid).
	Replica string `yaml:"replica"`

	Logger *slog.Logger     `yaml:"-"`
	Now    func() time.Time `yaml:"-"`
}

// ClusterConfig joins embedded servers into one NATS cluster.
type ClusterConfig struct {
	// Listen is this node's route address (host:port); empty: no cluster.
	Listen string `yaml:"listen"`
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string `yaml:"routes"`
	// Name is the cluster's name (default weir-hub).
	Name string `yaml:"name"`
}

// LoadConfig reads a hub settings file (sample.yaml) strictly: an unknown
// key is an error naming its line.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4222"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
		if c.Cluster.Listen != "" {
			c.Replicas = 3
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Replica == "" {
		host, _ := os.Hostname()
		c.Replica = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
}

// Validate checks the configuration without I/O.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("hub: data_dir is required"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("hub: tls_cert and tls_key go together"))
	}
	if c.Cluster.Listen != "" {
		if c.NATSURL != "" {
			errs = append(errs, errors.New("hub: cluster joins embedded servers; with nats_url the cluster is yours"))
		}
		if c.Replica == "" {
			errs = append(errs, errors.New("hub: cluster needs replica: a stable name per node (it names the JetStream peer)"))
		}
		if len(c.Cluster.Routes) == 0 {
			errs = append(errs, errors.New("hub: cluster.routes: list the other nodes (nats-route://host:port)"))
		}
	}
	if c.Replicas != 0 && c.Replicas != 1 && c.Replicas != 3 {
		errs = append(errs, fmt.Errorf("hub: replicas %d: use 1 or 3", c.Replicas))
	}
	if c.NATSURL != "" && (c.TLSCert != "" || c.TLSAuto) {
		errs = append(errs, errors.New("hub: tls_cert/tls_key configure the embedded server; with nats_url the server has its own"))
	}
	return errors.Join(errs...)
}

// urlFile, in the data dir, holds the client URL of the running embedded
// server.
const urlFile = "nats.url"

// Hub is one stateless replica of the control plane: every piece of state
// is in NATS (KV buckets and streams), so replicas on one NATS may run
// side by side; requests are answered in the queue group weir-hub, and
// every update of shared state is a compare-and-set on a KV revision.
type Hub struct {
	cfg  Config
	log  *slog.Logger
	keys *keyring
	srv  *server.Server // nil with an external NATS
	nc   *nats.Conn
	js   jetstream.JetStream

	desired, layers, sites, enroll, trust jetstream.KeyValue
	auditStream                           jetstream.Stream

	// revokeMu serialises re-issuing the account JWT (revocations).
	revokeMu sync.Mutex

	subs      []*nats.Subscription
	closeOnce sync.Once
}

// Open starts a hub replica: loads (or on first start creates) its keys,
// starts the embedded NATS unless NATSURL is set, connects, creates the
// buckets and streams and starts answering requests.
func Open(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Cluster.Listen != "" && cfg.Replica == "" {
		return nil, errors.New("hub: cluster needs replica: a stable name per node (it names the JetStream peer)")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub data dir: %w", err)
	}
	k, err := loadKeys(cfg.DataDir, true)
	if err != nil {
		return nil, err
	}
	if cfg.TLSAuto && cfg.TLSCert == "" && cfg.NATSURL == "" {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		name, _ := os.Hostname()
		if err := ensureAutoTLS(&cfg, []string{host, name}); err != nil {
			return nil, err
		}
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub"), keys: k}
	if cfg.NATSURL == "" {
		if h.srv, err = startEmbedded(&h.cfg, k, cfg.Logger); err != nil {
			return nil, err
		}
	}
	if err := h.connect(); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.ensure(ctx); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.writeEnrollCreds(); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.applyRevocations(ctx); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.serve(); err != nil {
		h.Close()
		return nil, err
	}
	if h.srv != nil {
		// The CLI's other commands find the running hub here.
		if err := writeReplace(filepath.Join(cfg.DataDir, urlFile), []byte(h.URL()+"\n")); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// Init creates the hub's keys in dataDir/keys (once; existing keys are
// kept) and the files an external nats-server needs to trust them
// (keys/operator.jwt, keys/nats-resolver.conf). `weir hub run` does this
// itself; with -nats-url, run `weir hub init` first and configure the
// server with the resolver file.
func Init(dataDir string) (resolverConfPath string, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("hub data dir: %w", err)
	}
	k, err := loadKeys(dataDir, true)
	if err != nil {
		return "", err
	}
	return filepath.Join(k.dir, resolverConf), nil
}

// Dial connects to a running hub's NATS (cfg.NATSURL, default
// nats://127.0.0.1:4222) with the identity in cfg.DataDir/keys, without
// starting a server or answering requests: what the CLI's publish, site,
// token, keys and audit commands use. The keys must exist (`weir hub run`
// creates them).
func Dial(ctx context.Context, cfg Config) (*Hub, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("hub: data_dir is required")
	}
	if cfg.NATSURL == "" {
		cfg.NATSURL = "nats://" + cfg.Listen
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, urlFile)); err == nil {
			cfg.NATSURL = strings.TrimSpace(string(b))
		}
	}
	if cfg.TLSCA == "" {
		if _, err := os.Stat(CAPath(cfg.DataDir)); err == nil {
			cfg.TLSCA = CAPath(cfg.DataDir)
		}
	}
	k, err := loadKeys(cfg.DataDir, false)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub"), keys: k}
	if err := h.connect(); err != nil {
		return nil, err
	}
	if err := h.ensure(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// URL is where sites connect (the embedded server's client URL, or NATSURL).
func (h *Hub) URL() string {
	if h.srv != nil {
		return h.srv.ClientURL()
	}
	return h.cfg.NATSURL
}

// EnrollCredsPath is the creds file of the enrolment user: it may only
// ask weir.enroll, and is given to whoever installs sites.
func (h *Hub) EnrollCredsPath() string { return filepath.Join(h.keys.dir, enrollCredsFile) }

// KeyID names the key bundles are signed with now.
func (h *Hub) KeyID(ctx context.Context) (string, error) {
	s, err := h.signer(ctx)
	if err != nil {
		return "", err
	}
	return s.KeyID, nil
}

// Conn is the hub's own NATS connection (all rights in the hub account).
func (h *Hub) Conn() *nats.Conn { return h.nc }

func (h *Hub) connect() error {
	u, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	pub, _ := u.PublicKey()
	tok, err := h.keys.userJWT("weir-hub-"+h.cfg.Replica, pub, jwt.Permissions{})
	if err != nil {
		return fmt.Errorf("hub user: %w", err)
	}
	opts := []nats.Option{
		nats.Name("weir-hub " + h.cfg.Replica),
		nats.UserJWT(func() (string, error) { return tok, nil }, func(nonce []byte) ([]byte, error) { return u.Sign(nonce) }),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				h.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { h.log.Info("nats reconnected") }),
	}
	url := h.cfg.NATSURL
	if h.srv != nil {
		url = h.srv.ClientURL()
		opts = append(opts, nats.InProcessServer(h.srv))
		if h.cfg.TLSCert != "" {
			// An in-process pipe to our own server: there is no network
			// to authenticate the server over, only the TLS the listener
			// requires of every client.
			opts = append(opts, nats.Secure(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})) //nolint:gosec
		}
	} else if h.cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(h.cfg.TLSCA))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("hub: connect to nats %s: %w", url, err)
	}
	h.nc = nc
	if h.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("hub: jetstream: %w", err)
	}
	return nil
}

// ensure creates (or updates to this version's settings) the buckets and
// streams of the layout. CreateOrUpdate is idempotent: replicas starting
// together agree.
func (h *Hub) ensure(ctx context.Context) error {
	if err := h.waitJetStream(ctx); err != nil {
		return err
	}
	kvs := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&h.desired, jetstream.KeyValueConfig{Bucket: BucketDesired, History: 5, Storage: jetstream.FileStorage,
			MaxValueSize: 4 << 20,
			RePublish:    &jetstream.RePublish{Source: "$KV." + BucketDesired + ".site.*", Destination: SubjectDesiredPrefix + "{{wildcard(1)}}"},
			Description:  "newest signed bundle per site"}},
		{&h.layers, jetstream.KeyValueConfig{Bucket: BucketLayers, History: 20, Storage: jetstream.FileStorage,
			MaxValueSize: 1 << 20, Description: "configuration layers: base, group.<g>, site.<s>"}},
		{&h.sites, jetstream.KeyValueConfig{Bucket: BucketSites, History: 5, Storage: jetstream.FileStorage,
			MaxValueSize: 64 << 10, Description: "site registry: groups, keys"}},
		{&h.enroll, jetstream.KeyValueConfig{Bucket: BucketEnroll, History: 1, Storage: jetstream.FileStorage,
			MaxValueSize: 4 << 10, TTL: maxTokenTTL, Description: "one-time enrolment tokens (by SHA-256)"}},
		{&h.trust, jetstream.KeyValueConfig{Bucket: BucketTrust, History: 1, Storage: jetstream.FileStorage,
			MaxValueSize: 4 << 10, Description: "signed key rotation statements, in order"}},
	}
	for _, kv := range kvs {
		kv.cfg.Replicas = h.cfg.Replicas
		b, err := retry(ctx, func(c context.Context) (jetstream.KeyValue, error) { return h.js.CreateOrUpdateKeyValue(c, kv.cfg) })
		if err != nil {
			return fmt.Errorf("hub: bucket %s: %w", kv.cfg.Bucket, err)
		}
		*kv.dst = b
	}
	if _, err := retry(ctx, func(c context.Context) (jetstream.Stream, error) {
		return h.js.CreateOrUpdateStream(c, jetstream.StreamConfig{Name: StreamReports,
			Subjects: []string{SubjectReportPrefix + ">"}, Storage: jetstream.FileStorage,
			MaxAge: 7 * 24 * time.Hour, Replicas: h.cfg.Replicas, MaxMsgsPerSubject: 1000, MaxMsgSize: 256 << 10, Discard: jetstream.DiscardOld,
			Description: "site reports"})
	}); err != nil {
		return fmt.Errorf("hub: stream %s: %w", StreamReports, err)
	}
	s, err := retry(ctx, func(c context.Context) (jetstream.Stream, error) {
		return h.js.CreateOrUpdateStream(c, jetstream.StreamConfig{Name: StreamAudit,
			Subjects: []string{SubjectAudit}, Storage: jetstream.FileStorage, MaxMsgSize: 64 << 10, Replicas: h.cfg.Replicas,
			Description: "hub audit trail (hash chain)"})
	})
	if err != nil {
		return fmt.Errorf("hub: stream %s: %w", StreamAudit, err)
	}
	h.auditStream = s
	return nil
}

// waitJetStream asks for the account's JetStream info until it answers:
// a cluster electing its meta leader drops API requests unanswered, and
// one request would then wait out the whole context.
func (h *Hub) waitJetStream(ctx context.Context) error {
	for {
		tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := h.js.AccountInfo(tctx)
		cancel()
		if err == nil {
			return nil
		}
		h.log.Info("waiting for JetStream", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("hub: JetStream not available: %w (last: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// writeEnrollCreds writes the enrolment user's creds file when missing.
func (h *Hub) writeEnrollCreds() error {
	path := h.EnrollCredsPath()
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	creds, err := h.keys.newUserCreds("weir-enroll", jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{SubjectEnroll}},
		Sub: jwt.Permission{Allow: jwt.StringList{"_INBOX.>"}},
	})
	if err != nil {
		return err
	}
	if err := writeNew(path, creds); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// serve subscribes the request handlers in the queue group. Each
// subscription's handler runs on one goroutine (nats.go), so concurrency
// is bounded by the number of subscriptions; pending messages are bounded
// by the subscription's limits.
func (h *Hub) serve() error {
	for _, s := range []struct {
		subj string
		fn   nats.MsgHandler
	}{
		{SubjectAskDesired + "*", h.onAskDesired},
		{SubjectAskTrust, h.onAskTrust},
		{SubjectEnroll, h.onEnroll},
	} {
		sub, err := h.nc.QueueSubscribe(s.subj, QueueGroup, s.fn)
		if err != nil {
			return fmt.Errorf("hub: subscribe %s: %w", s.subj, err)
		}
		_ = sub.SetPendingLimits(10000, 64<<20)
		h.subs = append(h.subs, sub)
	}
	sub, err := h.nc.Subscribe(subjectApplyRevocations, h.onApplyRevocations)
	if err != nil {
		return fmt.Errorf("hub: subscribe %s: %w", subjectApplyRevocations, err)
	}
	h.subs = append(h.subs, sub)
	return h.nc.Flush()
}

// Close stops answering, closes the connection and, for the embedded
// server, shuts it down and waits for it.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		for _, s := range h.subs {
			_ = s.Unsubscribe()
		}
		if h.nc != nil {
			_ = h.nc.Drain()
			h.nc.Close()
		}
		if h.srv != nil {
			h.srv.Shutdown()
			h.srv.WaitForShutdown()
		}
	})
}

func (h *Hub) onAskDesired(m *nats.Msg) {
	site := m.Subject[len(SubjectAskDesired):]
	reply := nats.NewMsg(m.Reply)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := kvGet(ctx, h.desired, desiredKey(site))
	switch {
	case err == nil:
		reply.Data = e.Value()
	case errors.Is(err, jetstream.ErrKeyNotFound):
		reply.Header.Set(HeaderStatus, StatusNone)
	default:
		h.log.Warn("desired state request", "site", site, "err", err)
		return // the site retries; no answer is better than a wrong "none"
	}
	if err := m.RespondMsg(reply); err != nil {
		h.log.Debug("desired state reply", "site", site, "err", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
