package conf

import (
	"strings"
	"testing"
)

func TestTransportCheck(t *testing.T) {
	base := Transport{Peer: "broker plc.example:1883", Host: "plc.example", Credentials: "password", Fix: "use mqtts://"}
	tests := []struct {
		name string
		edit func(*Transport)
		// want is "key: error|warning: fragment" per problem, in order.
		want []string
	}{
		{"plaintext credentials", func(*Transport) {}, []string{"password: error: would be sent in plaintext to broker plc.example:1883"}},
		{"allowed", func(t *Transport) { t.AllowInsecure = true }, []string{"password: warning: is sent in plaintext"}},
		{"tls", func(t *Transport) { t.Secure = true }, nil},
		{"no credentials", func(t *Transport) { t.Credentials = "" }, nil},
		{"loopback v4", func(t *Transport) { t.Host = "127.0.0.2" }, nil},
		{"loopback v6", func(t *Transport) { t.Host = "[::1]" }, nil},
		{"localhost", func(t *Transport) { t.Host = "LocalHost." }, nil},
		{"unix socket", func(t *Transport) { t.Host = "/var/run/postgresql" }, nil},
		{"unknown host", func(t *Transport) { t.Host = "" }, []string{"password: error: "}},
		{"name resolving anywhere", func(t *Transport) { t.Host = "localhost.example" }, []string{"password: error: "}},
		{"skip verify, loopback too", func(t *Transport) {
			t.Secure, t.Host, t.SkipVerify = true, "127.0.0.1", "tls.insecure_skip_verify"
		}, []string{"tls.insecure_skip_verify: warning: is true: the certificate of broker"}},
		{"unverified remote", func(t *Transport) {
			t.Secure, t.Unverified, t.UnverifiedWhy = true, "url", "sslmode=require does not verify the server"
		}, []string{"url: warning: sslmode=require does not verify the server: anyone"}},
		{"unverified loopback", func(t *Transport) {
			t.Secure, t.Host, t.Unverified, t.UnverifiedWhy = true, "::1", "url", "x"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := base
			tt.edit(&tr)
			var errs Errors
			errs.Add(tr.Check())
			if len(errs.list) != len(tt.want) {
				t.Fatalf("got %v, want %d problems", errs.list, len(tt.want))
			}
			for i, e := range errs.list {
				kind := "error"
				if IsWarning(e) {
					kind = "warning"
				}
				fe := e.(*FieldError)
				got := fe.Path + ": " + kind + ": " + fe.Err.Error()
				if !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mqtt://host:1883", "mqtt://host:1883"},
		{"http://alice:s3cr3t@host/x?y=1", "http://alice:xxxxx@host/x?y=1"},
		{"postgres://alice@db/plant", "postgres://alice@db/plant"},
		{"http://alice:s3cr3t%zz@host/", "http://xxxxx@host/"},
		{"opc.tcp://a:b@c@host:4840/p", "opc.tcp://a:xxxxx@host:4840/p"},
		{"not a url s3cr3t", "not a url s3cr3t"},
		{"http://host/p@th", "http://host/p@th"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://u:p@h.example:1883": "h.example", "[::1]:9092": "::1", "broker:9092": "broker",
		"opc.tcp://10.0.0.1:4840/x": "10.0.0.1", "%zz://": "",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://a:b@h/", "x://@", "p://u:pw@h@h2?x@y", "://a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// A password between ':' and '@' in the authority never survives.
		const pw = "PW-9f3k"
		in := "http://u:" + pw + "@" + raw
		if got := RedactURL(in); strings.Contains(got, pw) {
			t.Fatalf("RedactURL(%q) = %q keeps the password", in, got)
		}
	})
}
