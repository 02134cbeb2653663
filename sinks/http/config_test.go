package httpsink

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/tlsconf"
)

func decodeStrict(t *testing.T, data []byte) Config {
	t.Helper()
	return conftest.Decode[Config](t, string(data))
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, []byte(SampleConfig))
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if c.AuthHeader.Value.Env != "WEIR_HTTP_TOKEN" || !c.Gzip || c.TLS.CAFile == "" || len(c.RetryOn) != len(DefaultRetryOn) {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(sample): %v", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{URL: "http://h", AuthHeader: AuthHeader{Value: conf.Secret{Env: "T"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Method != http.MethodPost || c.Timeout != 30*time.Second || c.MaxBodyBytes != 1<<20 ||
		c.MaxRetryAfter != 5*time.Minute || c.AuthHeader.Name != "Authorization" || c.Node != "" ||
		len(c.RetryOn) != len(DefaultRetryOn) {
		t.Errorf("defaults: %+v", c)
	}
	// An explicit empty retry_on stays empty.
	if d := decodeStrict(t, []byte("url: http://h\nretry_on: []")); d.RetryOn == nil {
		t.Error("retry_on: [] decoded as unset")
	}
}

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.URL == "" {
			c.URL = "https://h/x"
		}
		return c
	}
	secret := conf.Secret{Env: "T"}
	tests := []struct {
		name string
		cfg  Config
		want []string // the exact messages, in order; nil: valid
	}{
		{"minimal", ok(Config{}), nil},
		{"http with path and query", ok(Config{URL: "http://127.0.0.1:8080/a/b?x=1"}), nil},
		{"lower case put", ok(Config{Method: "put"}), nil},
		{"headers", ok(Config{Headers: map[string]string{"X-A": "1", "user-agent": "me"}}), nil},
		{"auth header", ok(Config{AuthHeader: AuthHeader{Name: "X-Token", Value: secret}}), nil},
		{"missing url", Config{}, []string{"url: is required"}},
		{"scheme", Config{URL: "ftp://h"}, []string{`url: scheme "ftp" is not supported (http, https)`}},
		{"credentials", Config{URL: "https://u:p@h"}, []string{"url: must not contain credentials; use auth_header"}},
		{"no host", Config{URL: "http:///x"}, []string{"url: has no host"}},
		{"fragment", Config{URL: "http://h/#f"}, []string{"url: must not have a fragment"}},
		{"tls on http", Config{URL: "http://h", TLS: tlsconf.Config{Enabled: true}}, []string{"tls.enabled: is true but the url scheme is http; use https://"}},
		{"method", ok(Config{Method: "GET"}), []string{`method: "GET" is not supported (use POST or PUT)`}},
		{"bad headers", ok(Config{Headers: map[string]string{
			"Bad Name": "x", "content-length": "1", "Authorization": "Bearer x", "X-Crlf": "a\r\nb",
		}}), []string{
			"headers.Authorization: carries credentials; use auth_header so the value is not in the file",
			"headers.Bad Name: is not a valid header name",
			"headers.X-Crlf: value contains a control character",
			"headers.content-length: is set by the sink and cannot be configured",
		}},
		{"header duplicates auth header", ok(Config{Headers: map[string]string{"x-token": "1"}, AuthHeader: AuthHeader{Name: "X-Token", Value: secret}}),
			[]string{"headers.x-token: is also auth_header.name"}},
		{"auth header without value", ok(Config{AuthHeader: AuthHeader{Name: "X-Token"}}),
			[]string{"auth_header.value: is required when name or prefix is set"}},
		{"auth header both sources", ok(Config{AuthHeader: AuthHeader{Value: conf.Secret{Env: "A", File: "b"}}}),
			[]string{"auth_header.value: give either env or file, not both"}},
		{"auth header bad name", ok(Config{AuthHeader: AuthHeader{Name: "Idempotency-Key", Value: secret}}),
			[]string{"auth_header.name: is set by the sink and cannot be configured"}},
		{"auth header prefix", ok(Config{AuthHeader: AuthHeader{Prefix: "B\n", Value: secret}}),
			[]string{"auth_header.prefix: contains a control character"}},
		{"timeout", ok(Config{Timeout: -time.Second}), []string{"timeout: must not be negative"}},
		{"tls block", ok(Config{TLS: tlsconf.Config{CertFile: "c"}}), []string{"tls.key_file: is required when cert_file is set"}},
		{"max body", ok(Config{MaxBodyBytes: 100}), []string{"max_body_bytes: must be at least 1024"}},
		{"retry_on", ok(Config{RetryOn: []int{401, 500}}), []string{"retry_on[1]: 500 is not a 4xx status (5xx are always retried)"}},
		{"max retry after", ok(Config{MaxRetryAfter: -1}), []string{"max_retry_after: must not be negative"}},
		{"node", ok(Config{Node: "a\nb"}), []string{"node: contains a control character"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(tt.want, "\n"))
			}
			if _, nerr := New(tt.cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

// TestBadConfigs decodes each testdata/*.bad.yaml; its first line is
// "# want: <the exact validation error>".
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
			want, ok := strings.CutPrefix(string(first), "# want: ")
			if !ok {
				t.Fatal("first line must be '# want: …'")
			}
			c := decodeStrict(t, data)
			if err := c.Validate(); err == nil || err.Error() != want {
				t.Fatalf("Validate() = %v, want %q", err, want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const limit = 5 * time.Minute
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", "  5 ", 5 * time.Second, true},
		{"capped", "301", limit, true},
		{"huge", "99999999999999999999999", limit, true},
		{"imf date", "Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second, true},
		{"rfc850 date", "Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second, true},
		{"ansi c date", "Sun Mar  1 12:00:20 2026", 20 * time.Second, true},
		{"date capped", "Mon, 02 Mar 2026 12:00:00 GMT", limit, true},
		{"date in the past", "Sun, 01 Mar 2026 11:00:00 GMT", 0, true},
		{"empty", "", 0, false},
		{"negative", "-1", 0, false},
		{"fraction", "1.5", 0, false},
		{"word", "soon", 0, false},
		{"plus sign", "+5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now, limit)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "99999999999999999999", "Sun, 01 Mar 2026 12:01:30 GMT", "Sunday, 01-Mar-26 12:00:10 GMT", "Sun Mar  1 12:00:20 2026", "", "-1", " 7 "} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const limit = 5 * time.Minute
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now, limit)
		if d < 0 || d > limit {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, limit)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v with ok=false", v, d)
		}
		if s := strings.TrimSpace(v); isDigits(s) && !ok {
			t.Fatalf("parseRetryAfter(%q): digits not accepted", v)
		}
	})
}
