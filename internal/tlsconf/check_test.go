package tlsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
)

// Check reports, in the operator's words, every file problem Load would
// hit at connect time, and the expiry Load would not notice.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	good, goodKey := tlstest.SelfSigned(t, dir, "good", now.Add(-day), now.Add(365*day))
	_, otherKey := tlstest.SelfSigned(t, dir, "other", now.Add(-day), now.Add(365*day))
	expired, expiredKey := tlstest.SelfSigned(t, dir, "expired", now.Add(-90*day), now.Add(-10*day))
	soon, soonKey := tlstest.SelfSigned(t, dir, "soon", now.Add(-90*day), now.Add(12*day+time.Hour))
	future, futureKey := tlstest.SelfSigned(t, dir, "future", now.Add(3*day), now.Add(90*day))
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not.pem", "hello\n", 0o600)
	keyBytes, err := os.ReadFile(goodKey)
	if err != nil {
		t.Fatal(err)
	}
	openKey := write("open-key.pem", string(keyBytes), 0o644)
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bundle := write("bundle.pem", readAll(t, expired)+string(goodBytes), 0o644)
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		cfg  Config
		want []string // "path: message", warnings prefixed "warning: "
	}{
		{"no files", Config{Enabled: true}, nil},
		{"good", Config{CAFile: good, CertFile: good, KeyFile: goodKey}, nil},
		{"bundle with one expired root", Config{CAFile: bundle}, nil},
		{"missing ca", Config{CAFile: missing}, []string{"ca_file: CA file " + missing + " does not exist"}},
		{"ca not pem", Config{CAFile: notPEM}, []string{"ca_file: CA file " + notPEM + " holds no PEM certificate"}},
		{"ca is a directory", Config{CAFile: dir}, []string{"ca_file: CA file " + dir + " is a directory"}},
		{"expired ca", Config{CAFile: expired}, []string{"ca_file: certificate " + expired + " expired on 2027-02-19"}},
		{"key does not match", Config{CertFile: good, KeyFile: otherKey},
			[]string{"key_file: " + otherKey + " does not match the certificate in " + good}},
		{"key not pem", Config{CertFile: good, KeyFile: notPEM}, []string{"key_file: " + notPEM + " holds no PEM private key"}},
		{"cert not pem", Config{CertFile: notPEM, KeyFile: goodKey}, []string{"cert_file: " + notPEM + " holds no PEM certificate"}},
		{"missing cert and key", Config{CertFile: missing, KeyFile: missing}, []string{
			"cert_file: certificate file " + missing + " does not exist", "key_file: key file " + missing + " does not exist"}},
		{"expired cert", Config{CertFile: expired, KeyFile: expiredKey}, []string{"cert_file: certificate " + expired + " expired on 2027-02-19"}},
		{"cert not yet valid", Config{CertFile: future, KeyFile: futureKey},
			[]string{"cert_file: certificate " + future + " is not valid before 2027-03-04 (is this machine's clock right?)"}},
		{"cert expires soon", Config{CertFile: soon, KeyFile: soonKey}, []string{"cert_file: warning: certificate " + soon + " expires in 12 day(s), on 2027-03-13"}},
		{"key readable by others", Config{CertFile: good, KeyFile: openKey},
			[]string{"key_file: warning: key file " + openKey + " is accessible by other users (mode 0644); make it private with chmod 600"}},
		{"everything at once", Config{CAFile: notPEM, CertFile: expired, KeyFile: otherKey}, []string{
			"ca_file: CA file " + notPEM + " holds no PEM certificate",
			"cert_file: certificate " + expired + " expired on 2027-02-19",
			"key_file: " + otherKey + " does not match the certificate in " + expired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(tt.cfg.Check(now))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("Check:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func readAll(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func render(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fe := e.(*conf.FieldError)
		msg := fe.Err.Error()
		if conf.IsWarning(fe.Err) {
			msg = "warning: " + msg
		}
		out = append(out, fe.Path+": "+msg)
	}
	return out
}
