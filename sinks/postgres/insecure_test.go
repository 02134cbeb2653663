package postgres

import (
	"testing"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
)

func TestTransports(t *testing.T) {
	pw := conf.Secret{Env: "PG_PW"}
	tests := []struct {
		name string
		cfg  Config
		// want: "" no problem, else the key and whether it is an error.
		key     string
		isError bool
	}{
		{"verify-full", Config{URL: "postgres://u@db.example/x?sslmode=verify-full", Password: pw}, "", false},
		{"prefer default with password", Config{URL: "postgres://u@db.example/x", Password: pw}, "password", true},
		{"allow_insecure", Config{URL: "postgres://u@db.example/x?sslmode=disable", Password: pw, AllowInsecure: true}, "password", false},
		{"allow without password", Config{DSN: "host=db.example sslmode=allow"}, "dsn", false},
		{"require", Config{DSN: "host=db.example sslmode=require", Password: pw}, "dsn", false},
		{"verify-ca", Config{URL: "postgres://db.example/x?sslmode=verify-ca"}, "url", false},
		{"tls block", Config{URL: "postgres://db.example/x", Password: pw, TLS: tlsconf.Config{Enabled: true}}, "", false},
		{"loopback list", Config{URL: "postgres://u@127.0.0.1:5432,localhost:5433/x", Password: pw}, "", false},
		{"list with a remote host", Config{URL: "postgres://u@127.0.0.1:5432,db.example:5433/x", Password: pw}, "password", true},
		{"socket in query", Config{URL: "postgres://u@/x?host=/var/run/postgresql", Password: pw}, "", false},
		{"no host: local socket", Config{DSN: "user=weir dbname=x", Password: pw}, "", false},
		{"hostaddr wins", Config{DSN: "host=localhost hostaddr=10.0.0.9", Password: pw}, "password", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var errs conf.Errors
			for _, tr := range tt.cfg.Transports() {
				errs.Add(tr.Check())
			}
			err := errs.Err()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("want no problem, got %v", err)
				}
				return
			}
			fe, ok := err.(interface{ Unwrap() []error })
			if !ok || len(fe.Unwrap()) != 1 {
				t.Fatalf("want one problem at %s, got %v", tt.key, err)
			}
			p := fe.Unwrap()[0].(*conf.FieldError)
			if p.Path != tt.key || conf.IsWarning(p) == tt.isError {
				t.Fatalf("got %v (warning %v), want key %s error %v", p, conf.IsWarning(p), tt.key, tt.isError)
			}
		})
	}
}
