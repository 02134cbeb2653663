package postgres

import (
	"net/url"
	"strings"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes the connection to the database for the
// insecure-transport rule (conf.Transport), from what url or dsn says:
// sslmode disable, allow or prefer (pgx's default) may run in clear, so a
// password there is an error to another machine (allow_insecure makes it a
// warning) and data alone a warning; require and verify-ca encrypt without
// checking the server's name (a warning); verify-full, or the tls block
// enabled (which verifies every host), is secure. A host list counts as
// loopback only when every host is; no host means the local socket.
// PGHOST and PGSSLMODE in the environment are not judged: Validate does
// no I/O, and the file should say where its data goes.
func (c *Config) Transports() []conf.Transport {
	key := "url"
	hosts, mode, ok := c.urlParts()
	if c.URL == "" {
		key = "dsn"
		hosts, mode, ok = c.dsnParts()
	}
	if !ok {
		return nil // Validate reports it
	}
	host := ""
	for i, h := range hosts {
		if i == 0 || (conf.IsLoopback(host) && !conf.IsLoopback(h)) {
			host = h
		}
	}
	if host == "" {
		host = "/" // libpq's default: the unix socket
	}
	peer := "database " + strings.Join(hosts, ",")
	if len(hosts) == 0 {
		peer = "database on the local socket"
	}
	if mode == "" {
		mode = "prefer"
	}
	t := conf.Transport{
		Peer:          peer,
		Host:          host,
		Fix:           "set sslmode=verify-full in " + key + " (or tls.enabled: true)",
		AllowInsecure: c.AllowInsecure,
	}
	switch {
	case c.TLS.Enabled:
		t.Secure = true
	case mode == "verify-full":
		t.Secure = true
	case mode == "require" || mode == "verify-ca":
		t.Secure = true // encrypted: the password does not cross in clear
		t.Unverified, t.UnverifiedWhy = key, "sslmode="+mode+" does not check the server's host name"
	case !c.Password.IsSet():
		t.Unverified, t.UnverifiedWhy = key, "sslmode="+mode+" does not require encryption"
	}
	if c.Password.IsSet() {
		t.Credentials = "password"
	}
	if c.TLS.InsecureSkipVerify {
		t.SkipVerify = "tls.insecure_skip_verify"
	}
	return []conf.Transport{t}
}

// urlParts returns the hosts and sslmode of a postgres:// URL: the
// authority may list several hosts, and a host query parameter may name
// a socket directory.
func (c *Config) urlParts() (hosts []string, sslmode string, ok bool) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, "", false
	}
	q := u.Query()
	for _, hp := range strings.Split(u.Host, ",") {
		if hp != "" {
			hosts = append(hosts, conf.HostOf(hp))
		}
	}
	if h := q.Get("host"); h != "" {
		hosts = strings.Split(h, ",")
	}
	return hosts, q.Get("sslmode"), true
}

// dsnParts returns the hosts and sslmode of a key=value string; hostaddr,
// when given, is where pgx connects.
func (c *Config) dsnParts() (hosts []string, sslmode string, ok bool) {
	kv, err := parseDSN(c.DSN)
	if err != nil {
		return nil, "", false
	}
	h := kv["host"]
	if a := kv["hostaddr"]; a != "" {
		h = a
	}
	if h != "" {
		hosts = strings.Split(h, ",")
	}
	return hosts, kv["sslmode"], true
}

var _ conf.Transporter = (*Config)(nil)
