package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// APITLSDir, in the data dir, holds the self-signed certificate (when the
// configuration names none) and APICertFile, the certificate the API
// serves, published for clients on this machine (weir alarms) to trust.
const (
	APITLSDir   = "tls"
	APICertFile = "api.crt"
)

// apiServing is how the gateway serves the API on its listener.
type apiServing struct {
	tls    *api.TLS // nil: plain HTTP (loopback, or insecure)
	url    string   // what DATA_DIR/api.url says
	hosts  []string // http.allowed_hosts and the defaults
	limits api.Limits
}

// prepareAPI decides, for the address the listener actually bound (a flag
// may have changed it), between HTTPS and plain HTTP: plain HTTP that
// other machines can reach is refused unless http.insecure says so, and
// then warned about at every start. With TLS and no cert_file, a
// self-signed certificate is made (once) in DATA_DIR/tls. The
// certificate's fingerprint is printed to stderr and logged at every
// start, so that an operator can compare it with what a browser shows.
func prepareAPI(cfg *config.Config, addr net.Addr, rec security.Recorder, log *slog.Logger, stderr io.Writer) (apiServing, error) {
	h := cfg.HTTP
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return apiServing{}, fmt.Errorf("http listener: %s is not a TCP address", addr)
	}
	loopback := ta.IP.IsLoopback()
	out := apiServing{limits: api.Limits{MaxConnsPerClient: h.MaxConnectionsPerClient, MaxConns: h.MaxConnections,
		MaxHeaderBytes: h.MaxHeaderBytes, MaxBodyBytes: h.MaxBodyBytes}}
	hostName, _ := os.Hostname()
	hostName = strings.ToLower(hostName)
	subject := certSubject(hostName, ta, h.AllowedHosts)
	out.hosts = append(out.hosts, h.AllowedHosts...)
	if hostName != "" {
		out.hosts = append(out.hosts, hostName)
	}
	if !ta.IP.IsUnspecified() {
		out.hosts = append(out.hosts, ta.IP.String())
	}
	urlHost := ta.IP.String()
	if ta.IP.IsUnspecified() {
		urlHost = "127.0.0.1" // clients on this machine; a dual-stack [::] listener answers there too
	}
	urlHost = net.JoinHostPort(urlHost, strconv.Itoa(ta.Port))

	if !h.TLSOn(loopback) {
		out.url = "http://" + urlHost
		if loopback {
			return out, nil
		}
		if !h.Insecure {
			return apiServing{}, fmt.Errorf("http listener %s: other machines can reach it and tls is off, so passwords, tokens and setpoints "+
				"would cross the network in clear text; remove http.tls.enabled: false (a self-signed certificate is made), listen on 127.0.0.1, "+
				"or set http.insecure: true to accept that", ta)
		}
		log.Warn("http: plain HTTP on an address other machines can reach (http.insecure: true): passwords, tokens and setpoints cross the network in clear text",
			"addr", ta.String())
		rec.Record(context.Background(), security.Event{Time: time.Now(), Kind: security.InsecureTransport, Severity: security.SeverityWarning,
			Component: "api", Object: "http.insecure", Outcome: "ok",
			Detail: "the HTTP API serves plain HTTP on " + ta.String() + ", reachable from other machines"})
		return out, nil
	}

	dir := filepath.Join(cfg.DataDirOrDefault(), APITLSDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return apiServing{}, fmt.Errorf("http tls: %w", err)
	}
	opts := api.TLSOptions{CertFile: h.TLS.CertFile, KeyFile: h.TLS.KeyFile, ClientCA: h.TLS.ClientCA,
		OnLoad: func(chain []byte) {
			if err := WriteFileAtomic(filepath.Join(dir, APICertFile), chain, 0o600); err != nil {
				log.Warn("http tls: certificate not published for local clients; weir alarms will not trust it", "err", err)
			}
		}}
	selfSigned := opts.CertFile == ""
	if selfSigned {
		ss, err := api.EnsureSelfSigned(dir, subject, time.Now())
		if err != nil {
			return apiServing{}, err
		}
		if ss.Created {
			log.Info("http tls: generated a self-signed certificate", "cert", ss.CertFile, "why", ss.Why)
		}
		opts.CertFile, opts.KeyFile = ss.CertFile, ss.KeyFile
	}
	t, err := api.LoadTLS(opts, log.With("component", "api"), rec)
	if err != nil {
		return apiServing{}, err
	}
	out.tls, out.url = t, "https://"+urlHost
	leaf := t.Leaf()
	out.hosts = append(out.hosts, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out.hosts = append(out.hosts, ip.String())
	}
	log.Info("http tls: serving HTTPS", "sha256_fingerprint", t.Fingerprint(), "self_signed", selfSigned,
		"cert", opts.CertFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca", h.TLS.ClientCA)
	fmt.Fprintf(stderr, "weir: HTTPS API certificate (%s) SHA-256 fingerprint: %s\n", map[bool]string{true: "self-signed", false: opts.CertFile}[selfSigned], t.Fingerprint())
	return out, nil
}

// certSubject is what a self-signed certificate names: this machine's
// name, localhost, the loopback addresses, the listen address and the
// allowed hosts (all required), and, for a listener on every interface,
// each interface's address (included, not required: see api.CertSubject).
func certSubject(hostName string, ta *net.TCPAddr, allowed []string) api.CertSubject {
	sub := api.CertSubject{Names: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	if hostName != "" && hostName != "localhost" {
		sub.Names = append([]string{hostName}, sub.Names...)
	}
	if ta.IP.IsUnspecified() {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if in, ok := a.(*net.IPNet); ok && !in.IP.IsLinkLocalUnicast() && !in.IP.IsLoopback() {
					sub.ExtraIPs = append(sub.ExtraIPs, in.IP)
				}
			}
		}
	} else {
		sub.IPs = append(sub.IPs, ta.IP) // a duplicate of a loopback address is harmless
	}
	for _, h := range allowed {
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			sub.IPs = append(sub.IPs, ip)
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !containsString(sub.Names, h) {
			sub.Names = append(sub.Names, h)
		}
	}
	return sub
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WriteFileAtomic writes data to path through a temporary file in the
// same directory, so a reader sees the old content or the new.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
