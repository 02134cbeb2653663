package hub

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded starts one nats-server node with JetStream in operator
// mode: it trusts only the hub's operator, resolves the hub's account and
// the system account from memory, and keeps JetStream under
// DATA_DIR/jetstream.
func startEmbedded(cfg *Config, k *keyring, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("hub listen %q: want host:port: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("hub listen %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	res := &server.MemAccResolver{}
	_ = res.Store(k.accountPub, k.accountJWT)
	_ = res.Store(k.systemPub, k.systemJWT)
	opts := &server.Options{
		ServerName:       "weir-hub",
		Host:             host,
		Port:             port,
		JetStream:        true,
		StoreDir:         filepath.Join(cfg.DataDir, "jetstream"),
		TrustedOperators: []*jwt.OperatorClaims{k.operatorClaims},
		AccountResolver:  res,
		SystemAccount:    k.systemPub,
		NoSigs:           true,
		MaxPayload:       8 << 20,
		// JetStreamMaxMemory/Store stay at the server's defaults (a share
		// of the machine); streams are bounded by their own limits.
	}
	if c := cfg.Cluster; c.Listen != "" {
		chost, cport, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("hub cluster.listen %q: want host:port: %w", c.Listen, err)
		}
		opts.Cluster.Port, err = strconv.Atoi(cport)
		if err != nil {
			return nil, fmt.Errorf("hub cluster.listen %q: bad port", c.Listen)
		}
		opts.Cluster.Host = chost
		opts.Cluster.Name = c.Name
		if opts.Cluster.Name == "" {
			opts.Cluster.Name = "weir-hub"
		}
		opts.ServerName = cfg.Replica
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
		if len(opts.Routes) != len(c.Routes) {
			return nil, fmt.Errorf("hub cluster.routes %v: want nats-route://host:port each", c.Routes)
		}
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("hub tls: %w", err)
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		opts.TLS = true
		opts.TLSTimeout = 5
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("hub nats server: %w", err)
	}
	s.SetLoggerV2(natsLogger{log.With("component", "nats")}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("hub nats server: not ready after 30s (listen %s)", cfg.Listen)
	}
	return s, nil
}

// natsLogger passes the embedded server's log to slog: notices at debug
// (it is chatty at start), warnings and errors as such.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  {}
func (l natsLogger) Tracef(format string, v ...any)  {}
