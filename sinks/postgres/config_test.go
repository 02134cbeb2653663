package postgres

import (
	"bufio"
	"bytes"
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
	if c.Password.Env != "WEIR_PG_PASSWORD" || c.CreateTable == nil || !*c.CreateTable || !c.Timescale || !c.TLS.Enabled {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(sample): %v", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{DSN: "host=db dbname=plant"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Schema != "public" || c.Table != "weir_samples" || !*c.CreateTable || c.Node != "" ||
		c.ConnectTimeout != 10*time.Second || c.StatementTimeout != 30*time.Second || c.ApplicationName != "weir" {
		t.Errorf("defaults: %+v", c)
	}
	if s.sql.insert != `INSERT INTO "public"."weir_samples" ("time", "path", "value_double", "value_int", "value_text", "value_bool", "quality", "reason", "edge_time", "seq", "historical", "node") `+
		`SELECT "time", "path", "value_double", "value_int", "value_text", "value_bool", "quality", "reason", "edge_time", "seq", "historical", "node" FROM "pg_temp"."weir_stage" ON CONFLICT DO NOTHING` {
		t.Errorf("insert: %s", s.sql.insert)
	}
}

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.URL == "" && c.DSN == "" {
			c.URL = "postgres://weir@db/plant"
		}
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // the exact messages, in order; nil: valid
	}{
		{"minimal url", ok(Config{}), nil},
		{"postgresql scheme with options", ok(Config{URL: "postgresql://weir@db:5433/plant?sslmode=verify-full&connect_timeout=5"}), nil},
		{"dsn with quotes", Config{DSN: `host=db dbname='my plant' user=weir application_name='a \' b'`}, nil},
		{"identifiers", ok(Config{Schema: "plant_1", Table: "_samples2"}), nil},
		{"missing", Config{}, []string{"url: is required (or dsn)"}},
		{"both", Config{URL: "postgres://db", DSN: "host=db"}, []string{"dsn: give either url or dsn, not both"}},
		{"scheme", Config{URL: "mysql://db"}, []string{`url: scheme "mysql" is not supported (postgres, postgresql)`}},
		{"password in url", Config{URL: "postgres://weir:pw@db/plant"}, []string{"url: must not contain a password; use password: {env: …} or {file: …}"}},
		{"password in url query", Config{URL: "postgres://db/plant?password=pw"}, []string{"url: must not contain a password; use password: {env: …} or {file: …}"}},
		{"password in dsn", Config{DSN: "host=db password='p w'"}, []string{"dsn: must not contain a password; use password: {env: …} or {file: …}"}},
		{"url in dsn", Config{DSN: "postgres://db"}, []string{"dsn: looks like a URL; use the url key"}},
		{"dsn without =", Config{DSN: "host=db plant"}, []string{"dsn: has a word without '=' (want key=value pairs; the text is not shown, in case it is a password)"}},
		{"dsn unterminated quote", Config{DSN: "host='db"}, []string{"dsn: has a quoted value without its closing quote"}},
		{"password both sources", ok(Config{Password: conf.Secret{Env: "A", File: "b"}}), []string{"password: give either env or file, not both"}},
		{"injection in table", ok(Config{Table: `x"; DROP TABLE y; --`}), []string{`table: "x\"; DROP TABLE y; --" is not a plain identifier (lower-case letters, digits and '_', not starting with a digit)`}},
		{"upper case schema", ok(Config{Schema: "Plant"}), []string{`schema: "Plant" is not a plain identifier (lower-case letters, digits and '_', not starting with a digit)`}},
		{"leading digit", ok(Config{Table: "1x"}), []string{`table: "1x" is not a plain identifier (lower-case letters, digits and '_', not starting with a digit)`}},
		{"dotted", ok(Config{Table: "a.b"}), []string{`table: "a.b" is not a plain identifier (lower-case letters, digits and '_', not starting with a digit)`}},
		{"reserved prefix", ok(Config{Schema: "pg_catalog"}), []string{`schema: "pg_catalog" uses the reserved prefix pg_`}},
		{"long table", ok(Config{Table: strings.Repeat("t", 54)}), []string{`table: "` + strings.Repeat("t", 54) + `" is longer than 53 bytes`}},
		{"node", ok(Config{Node: "a\tb"}), []string{"node: contains a control character"}},
		{"tls", ok(Config{TLS: tlsconf.Config{KeyFile: "k"}}), []string{"tls.cert_file: is required when key_file is set"}},
		{"timeouts", ok(Config{ConnectTimeout: -1, StatementTimeout: time.Microsecond}), []string{
			"connect_timeout: must not be negative", "statement_timeout: must be at least 1ms",
		}},
		{"application name", ok(Config{ApplicationName: "wéir"}), []string{"application_name: must be printable ASCII"}},
		{"long application name", ok(Config{ApplicationName: strings.Repeat("a", 64)}), []string{"application_name: is longer than 63 bytes"}},
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

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"host=db  port = 5432", map[string]string{"host": "db", "port": "5432"}},
		{`a='x y' b=c\ d e=''`, map[string]string{"a": "x y", "b": "c d", "e": ""}},
		{`a='it\'s'`, map[string]string{"a": "it's"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDSN(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// FuzzParseDSN: the parser of the dsn key never panics and finds every
// password key it is given.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"host=db", `a='x y' b=c\ d`, "password=x", "host='", `k=\`, "=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kv, err := parseDSN(s)
		if err != nil {
			return
		}
		if _, has := kv["password"]; has && checkDSN(s) == nil {
			t.Fatalf("%q: password accepted", s)
		}
	})
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
