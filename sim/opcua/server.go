package simopcua

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/weir-edge/weir/internal/third_party/gopcua/server"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/sim"
)

// Defaults of Options.
const (
	DefaultRefresh = 100 * time.Millisecond
	// notifyBudget bounds how long one refresh may wait for subscriptions
	// to take notifications; see notify.
	notifyBudget = 2 * time.Second
)

// Options configure the simulator's OPC UA server. The zero value serves
// security None and Basic256Sha256 (Sign, SignAndEncrypt) to anonymous
// clients and publishes changes every 100 ms without stepping the plant.
type Options struct {
	// Security lists the policies served: None, Basic256Sha256,
	// Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss. Secure policies are
	// served with Sign and SignAndEncrypt. Default None and Basic256Sha256.
	Security []string `yaml:"security"`
	// Users maps user names to passwords for UserName logins.
	Users map[string]string `yaml:"users"`
	// DenyAnonymous refuses anonymous sessions.
	DenyAnonymous bool `yaml:"deny_anonymous"`
	// Refresh is how often values are compared and changes published.
	Refresh time.Duration `yaml:"refresh"`
	// Step, when set, makes the server advance the plant by Step on every
	// refresh; leave it zero when another front end (the Modbus server)
	// already steps the same plant.
	Step time.Duration `yaml:"step"`
	// CertFile and KeyFile give the server certificate (PEM); without them
	// one is generated in memory for every start.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// BenchNodes adds that many Double variables (ns=1;s=bench.00000 …)
	// that all change on every refresh, for load tests.
	BenchNodes int `yaml:"bench_nodes"`
}

// Validate checks the options without I/O.
func (o *Options) Validate() error {
	var errs []error
	for i, p := range o.Security {
		switch p {
		case "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss":
		default:
			errs = append(errs, fmt.Errorf("security[%d]: unknown policy %q", i, p))
		}
	}
	if o.Refresh < 0 || o.Step < 0 {
		errs = append(errs, errors.New("refresh and step must not be negative"))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file go together"))
	}
	if o.BenchNodes < 0 || o.BenchNodes > 1_000_000 {
		errs = append(errs, fmt.Errorf("bench_nodes: %d is outside 0..1000000", o.BenchNodes))
	}
	if o.DenyAnonymous && len(o.Users) == 0 {
		errs = append(errs, errors.New("deny_anonymous needs at least one user"))
	}
	return errors.Join(errs...)
}

// Server serves a plant over OPC UA.
type Server struct {
	opts     Options
	log      *slog.Logger
	plant    *sim.Plant
	srv      *server.Server
	space    *space
	endpoint string
	cert     []byte
	key      *rsa.PrivateKey

	cancel    func()             // stops the refresh loop and waits for it
	libCancel context.CancelFunc // stops the library's goroutines
	runExited chan struct{}      // closed when the refresh loop has returned
	done      chan struct{}
	closeOnce sync.Once
	pubMu     sync.Mutex // serialises publish (refresh loop, Write)

	authFailures, dropped, published atomic.Uint64
}

// Serve starts serving plant at addr (host:port; port 0 picks a free one)
// until ctx is done or Close is called. Endpoint reports the URL.
func Serve(ctx context.Context, addr string, plant *sim.Plant, opts Options, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("opcua sim: %w", err)
	}
	if len(opts.Security) == 0 {
		opts.Security = []string{"None", "Basic256Sha256"}
	}
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("opcua sim: address %q: %w", addr, err)
	}
	s := &Server{opts: opts, log: log, plant: plant, done: make(chan struct{})}
	if opts.CertFile != "" {
		kp, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("opcua sim: %w", err)
		}
		k, ok := kp.PrivateKey.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("opcua sim: key_file is not an RSA key")
		}
		s.cert, s.key = kp.Certificate[0], k
	} else if s.cert, s.key, err = newServerCert(host); err != nil {
		return nil, fmt.Errorf("opcua sim: certificate: %w", err)
	}
	// The library advertises the configured port, so port 0 is resolved
	// here first; a port taken in between is retried with another.
	for attempt := 0; ; attempt++ {
		p := port
		if p == "0" {
			if p, err = freePort(host); err != nil {
				return nil, fmt.Errorf("opcua sim: %w", err)
			}
		}
		err = s.start(host, p)
		if err == nil || port != "0" || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opcua sim: listen on %s: %w", addr, err)
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	log.Info("OPC UA simulator listening", "endpoint", s.endpoint, "security", opts.Security, "users", len(opts.Users))
	return s, nil
}

func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, p, err := net.SplitHostPort(l.Addr().String())
	return p, err
}

func (s *Server) start(host, port string) error {
	pn, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	opts := []server.Option{
		server.EndPoint(host, pn),
		server.PrivateKey(s.key),
		server.Certificate(s.cert),
		server.ServerName("Weir simulated filling line"),
		server.ManufacturerName("Weir"),
		server.ProductName("weir sim"),
		server.SetLogger(libLogger{s.log.With("lib", "gopcua")}),
	}
	for _, p := range s.opts.Security {
		if p == "None" {
			opts = append(opts, server.EnableSecurity("None", ua.MessageSecurityModeNone))
			continue
		}
		opts = append(opts, server.EnableSecurity(p, ua.MessageSecurityModeSign),
			server.EnableSecurity(p, ua.MessageSecurityModeSignAndEncrypt))
	}
	if !s.opts.DenyAnonymous {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeAnonymous))
	}
	if len(s.opts.Users) > 0 {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeUserName))
	}
	srv := server.New(opts...)
	lib := librarySessionService(srv)
	if lib == nil {
		return errors.New("gopcua's SessionService layout changed; cannot check user identities")
	}
	// Registered before Start, this handler wins over the library's.
	srv.RegisterHandler(id.ActivateSessionRequest_Encoding_DefaultBinary, s.activateSession(lib))

	sp := &space{nodes: map[string]*server.Node{}, vars: map[string]*variable{}, children: map[string][]*ua.ReferenceDescription{}}
	sp.write = s.write
	srv.AddNamespace(sp)
	folders, err := sp.build(s.plant, s.opts.BenchNodes, time.Now())
	if err != nil {
		return err
	}
	ns0, err := srv.Namespace(0)
	if err != nil {
		return err
	}
	for _, f := range folders {
		ns0.Objects().AddRef(f, id.Organizes, true)
	}
	// The library's goroutines get their own context, cancelled only after
	// its Close: its connection readers block on handing a message to the
	// dispatcher, which stops with that context.
	libCtx, libCancel := context.WithCancel(context.Background())
	if err := srv.Start(libCtx); err != nil {
		srv.Close()
		libCancel()
		return err
	}
	runCtx, runCancel := context.WithCancel(context.Background())
	s.srv, s.space, s.runExited = srv, sp, make(chan struct{})
	s.cancel = func() { runCancel(); <-s.runExited }
	s.libCancel = libCancel
	s.endpoint = "opc.tcp://" + net.JoinHostPort(host, port)
	go s.run(runCtx)
	return nil
}

// Endpoint is the server's URL, opc.tcp://host:port, with the real port.
func (s *Server) Endpoint() string { return s.endpoint }

// Certificate is the server's certificate (DER), for a client's trust list.
func (s *Server) Certificate() []byte { return s.cert }

// Stats are the server's counters.
type Stats struct {
	Published    uint64 // notifications handed to subscriptions
	Dropped      uint64 // notifications dropped because a subscription did not take them in time
	AuthFailures uint64 // refused session activations
}

// Stats reports the counters.
func (s *Server) Stats() Stats {
	return Stats{Published: s.published.Load(), Dropped: s.dropped.Load(), AuthFailures: s.authFailures.Load()}
}

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the server: the refresh loop, every subscription and every
// connection. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.srv.Close()
		// The library leaves subscriptions running until their lifetime
		// runs out; stop them so nothing outlives the server.
		if ss := s.srv.SubscriptionService; ss != nil {
			ss.Mu.Lock()
			ids := make([]uint32, 0, len(ss.Subs))
			for id := range ss.Subs {
				ids = append(ids, id)
			}
			ss.Mu.Unlock()
			for _, id := range ids {
				ss.DeleteSubscription(id)
			}
		}
		s.libCancel()
		close(s.done)
	})
	return nil
}
