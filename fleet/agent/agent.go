package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/fleet/bundle"
	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/gateway"
)

// Target is the gateway the agent drives (the seam: *gateway.Gateway
// through Gateway(), or a stub in tests).
type Target interface {
	// Apply validates data as a whole configuration and applies it by hot
	// reload, recorded in the audit trail as actor. On error the running
	// configuration stays, or was changed only in part (the agent then
	// restores the one that ran).
	Apply(ctx context.Context, data []byte, actor string) error
	// Running is the exact text of the configuration that runs.
	Running() []byte
	// State snapshots the gateway's health; called every second.
	State() gateway.FleetState
}

// Options configure an Agent. Site, URL, Store and Target are required.
type Options struct {
	Site string
	// URL of the hub's NATS (comma-separated for a cluster).
	URL string
	// CredsFile is the site's NATS credentials (weir enroll); CAFile pins
	// the CA the hub's TLS certificate must chain to.
	CredsFile, CAFile string
	// NATS are extra connection options (tests: static users).
	NATS []nats.Option
	// Store holds the pinned hub keys and the last known-good bundle.
	Store *bundle.Store
	// Secrets resolves ${secret:…}/${sealed:…}; nil: a bundle with a
	// reference is refused.
	Secrets *bundle.SiteSecrets
	Target  Target
	// ReportInterval: a report at least this often (default 10s); one
	// more on every change, at most one a second.
	ReportInterval time.Duration
	// Dwell: how long a new version must keep the site healthy before it
	// becomes the known-good one (default 30s).
	Dwell time.Duration
	// MaxErrorRate bounds sink write errors per second during the dwell
	// (default 1).
	MaxErrorRate float64
	// Backlog bounds the reports kept while the hub is out of reach
	// (default 100): the newest are kept.
	Backlog int
	// RequestTimeout bounds every request to the hub (default 10s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// Now is the clock of reports (default time.Now).
	Now func() time.Time
}

// Defaults.
const (
	DefaultReportInterval = 10 * time.Second
	DefaultDwell          = 30 * time.Second
	DefaultBacklog        = 100
	defaultRequestTimeout = 10 * time.Second
	// minReportGap is the least time between two reports made on change.
	minReportGap = time.Second
	// inboxSize bounds the messages from the hub waiting to be applied;
	// past it the oldest go (the newest version wins anyway).
	inboxSize = 16
)

// Agent follows a hub for one site. Build it with New, run it with Run.
type Agent struct {
	opts Options
	log  *slog.Logger

	inbox     chan item     // from the hub, to the applier
	connected chan struct{} // (re)connected: ask the hub (cap 1)
	flush     chan struct{} // (re)connected: send held reports (cap 1)
	changed   chan struct{} // something reportable changed (cap 1)
	subjects  subjects

	mu         sync.Mutex
	desired    Version
	applied    Version
	appliedSHA string // SHA-256 of the resolved text applied (what runs when in sync)
	applying   bool
	rollback   *Event
	refused    *Event
	failed     Version // the last version that failed: not retried
	// reasked is the last version signed by an unknown key that made the
	// site ask the hub again (applier goroutine only).
	reasked uint64
	seq     uint64

	held atomic.Int64 // reports waiting for the hub (Held)
}

// item is one message from the hub: a bundle or a key rotation, raw.
type item struct {
	rotation bool
	data     []byte
	from     string // where it came from, for the log
}

// New checks opts; it does no I/O.
func New(opts Options) (*Agent, error) {
	switch {
	case opts.Site == "":
		return nil, errors.New("fleet agent: site is required")
	case opts.URL == "":
		return nil, errors.New("fleet agent: hub url is required")
	case opts.Store == nil:
		return nil, errors.New("fleet agent: a bundle store is required")
	case opts.Target == nil:
		return nil, errors.New("fleet agent: a target gateway is required")
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = DefaultReportInterval
	}
	if opts.Dwell <= 0 {
		opts.Dwell = DefaultDwell
	}
	if opts.MaxErrorRate <= 0 {
		opts.MaxErrorRate = 1
	}
	if opts.Backlog <= 0 {
		opts.Backlog = DefaultBacklog
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Agent{opts: opts, log: opts.Logger.With("component", "fleet_agent", "site", opts.Site),
		inbox: make(chan item, inboxSize), connected: make(chan struct{}, 1), flush: make(chan struct{}, 1),
		changed: make(chan struct{}, 1), subjects: subjectsOf(opts.Site)}
	if cur := opts.Store.Current(); cur != nil {
		a.applied = Version{Version: cur.Version, Hash: hexHash(cur.Hash)}
		a.desired = a.applied
	}
	return a, nil
}

// subjects are the NATS subjects of one site (contracts15.md, fleet/hub
// wire.go): the only ones its credentials allow.
type subjects struct {
	desired, askDesired, trust, askTrust, report, inbox string
}

func subjectsOf(site string) subjects {
	return subjects{desired: hub.SubjectDesiredPrefix + site, askDesired: hub.SubjectAskDesired + site,
		trust: hub.SubjectTrust, askTrust: hub.SubjectAskTrust, report: hub.SubjectReportPrefix + site, inbox: hub.InboxPrefix(site)}
}

// Run connects out to the hub and follows it until ctx ends; it returns
// nil then. The hub being out of reach is no error: the site runs its
// last known-good configuration and the connection is retried forever
// (backoff with jitter, up to 30 s). Run first applies the known-good
// bundle if the gateway runs something else (offline autonomy at start).
func (a *Agent) Run(ctx context.Context) error {
	nc, err := a.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, s := range []struct {
		subject  string
		rotation bool
	}{{a.subjects.desired, false}, {a.subjects.trust, true}} {
		rotation := s.rotation
		if _, err := nc.Subscribe(s.subject, func(m *nats.Msg) { a.receive(item{rotation: rotation, data: m.Data, from: m.Subject}) }); err != nil {
			return fmt.Errorf("fleet agent: subscribe %s: %w", s.subject, err)
		}
	}
	if nc.IsConnected() {
		signal(a.connected)
		signal(a.flush)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.ask(ctx, nc) }()
	go func() { defer wg.Done(); a.report(ctx, nc) }()
	go func() { defer wg.Done(); a.applyLoop(ctx) }()
	wg.Wait()
	return nil
}

// connect dials out: TLS with the pinned CA, the site's credentials, the
// site's own inbox prefix (its credentials allow no other), reconnecting
// forever.
func (a *Agent) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("weir-site-" + a.opts.Site),
		nats.CustomInboxPrefix(a.subjects.inbox),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		// Held while the hub is away: nothing to publish then but
		// reports, which the agent keeps itself.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(*nats.Conn) { a.log.Info("connected to the hub"); a.onConnect() }),
		nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("reconnected to the hub"); a.onConnect() }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				a.log.Warn("hub connection lost; running on the known-good configuration", "err", err)
			}
		}),
	}
	if a.opts.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.opts.CredsFile))
	}
	if a.opts.CAFile != "" {
		opts = append(opts, nats.RootCAs(a.opts.CAFile))
	}
	opts = append(opts, a.opts.NATS...)
	nc, err := nats.Connect(a.opts.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet agent: hub %s: %w", a.opts.URL, err)
	}
	return nc, nil
}

func (a *Agent) onConnect() {
	signal(a.connected)
	signal(a.flush)
	signal(a.changed)
}

// backoff is the wait before reconnect attempt n: doubling from 1 s to
// 30 s, with up to half of it again as jitter so that a thousand sites cut
// off together do not all come back in the same second.
func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 5)
	if d > 30*time.Second {
		d = 30 * time.Second
	}
	return d + rand.N(d/2+1)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// receive queues a message from the hub for the applier, dropping the
// oldest when full (the newest version wins, so nothing needed is lost:
// the hub is asked again at every reconnect).
func (a *Agent) receive(it item) {
	for {
		select {
		case a.inbox <- it:
			return
		default:
		}
		select {
		case <-a.inbox:
		default:
		}
	}
}

// ask requests the trust statements and the current bundle at every
// (re)connect: the newest version wins, nothing in between is replayed.
// No answer (the hub cannot read NATS, or no replica runs) is retried
// with backoff until one comes or the connection is lost — never taken
// as "no configuration".
func (a *Agent) ask(ctx context.Context, nc *nats.Conn) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	attempts := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.connected:
			attempts = 0
		case <-retry.C:
			if !nc.IsConnected() {
				continue // the next connect asks
			}
		}
		if err := a.askOnce(ctx, nc); err != nil {
			if ctx.Err() != nil {
				return
			}
			attempts++
			wait := backoff(attempts - 1)
			a.log.Warn("the hub did not answer; asking again", "in", wait.Round(time.Millisecond), "err", err)
			retry.Reset(wait)
			continue
		}
		retry.Stop()
	}
}

// askOnce asks for the key rotations, then the desired bundle, and
// queues what comes for the applier.
func (a *Agent) askOnce(ctx context.Context, nc *nats.Conn) error {
	m, err := a.request(ctx, nc, a.subjects.askTrust)
	if err != nil {
		return fmt.Errorf("key rotations: %w", err)
	}
	for _, r := range splitRotations(m.Data) {
		a.receive(item{rotation: true, data: r, from: m.Subject})
	}
	m, err = a.request(ctx, nc, a.subjects.askDesired)
	switch {
	case err != nil:
		return fmt.Errorf("desired configuration: %w", err)
	case m.Header.Get(hub.HeaderStatus) == hub.StatusNone || len(m.Data) == 0:
		a.log.Debug("the hub has no configuration for this site yet")
	default:
		a.receive(item{data: m.Data, from: a.subjects.askDesired})
	}
	return nil
}

func (a *Agent) request(ctx context.Context, nc *nats.Conn, subject string) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	return nc.RequestWithContext(ctx, subject, nil)
}

func sha256Hex(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}
