package conf

import (
	"strings"
	"testing"
)

// A reference that is not a variable name or an absolute path may be the
// secret itself: it is refused and never repeated, by Validate, Check,
// Resolve or String.
func TestSecretReferenceNeverEchoed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       Secret
		wantErr string
	}{
		{"env name", Secret{Env: "MQTT_PASSWORD"}, ""},
		{"absolute file", Secret{File: "/run/secrets/mqtt"}, ""},
		{"both", Secret{Env: "A", File: "/b"}, "either env or file"},
		{"pasted into env", Secret{Env: "Tr0ub4dor&3 horse"}, "env must name an environment variable"},
		{"digit first", Secret{Env: "1PASS"}, "env must name an environment variable"},
		{"pasted into file", Secret{File: "correct horse battery"}, "file must be an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
			_, rerr := tc.s.Resolve()
			for what, text := range map[string]string{"Validate": err.Error(), "Resolve": rerr.Error(), "String": tc.s.String()} {
				if (tc.s.Env != "" && strings.Contains(text, tc.s.Env)) || (tc.s.File != "" && strings.Contains(text, tc.s.File)) {
					t.Errorf("%s repeats the reference: %q", what, text)
				}
			}
			if cerr := tc.s.Check(); cerr != nil {
				t.Errorf("Check = %v, want nil (Validate reports it)", cerr)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:8080", ""},
		{":8080", ""},
		{"127.0.0.1:0", ""},
		{"[::1]:9000", ""},
		{"8080", "did you mean 127.0.0.1:8080 (this machine only) or :8080 (every interface)?"},
		{"localhost", "must be host:port, like 127.0.0.1:8080"},
		{"127.0.0.1:99999", "invalid port"},
		{"http://x:80", "must be host:port"},
	} {
		err := CheckListen(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}
