package tlsconf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, data []byte) Config {
	t.Helper()
	return conftest.Decode[Config](t, string(data))
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, []byte(SampleConfig))
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if !c.Enabled || c.CAFile == "" || c.MinVersion != "1.2" {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
}

func TestUnquotedMinVersion(t *testing.T) {
	c := decodeStrict(t, []byte("min_version: 1.3\n"))
	if c.MinVersion != "1.3" {
		t.Fatalf("min_version decoded as %q", c.MinVersion)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings; nil means valid
	}{
		{"zero", Config{}, nil},
		{"full", Config{Enabled: true, CAFile: "ca", CertFile: "c", KeyFile: "k", MinVersion: "1.3"}, nil},
		{"cert without key", Config{CertFile: "c"}, []string{"key_file: is required"}},
		{"key without cert", Config{KeyFile: "k"}, []string{"cert_file: is required"}},
		{"bad version", Config{MinVersion: "1.1"}, []string{`min_version: "1.1" is not a supported`}},
		{"all problems at once", Config{CertFile: "c", MinVersion: "tls13"}, []string{"key_file", "min_version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, tt.cfg.Validate(), tt.want)
		})
	}
}

// TestBadConfigs decodes each testdata/*.bad.yaml; its first line is
// "# want: <substring of the validation error>".
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
				t.Fatalf("first line must be '# want: …'")
			}
			c := decodeStrict(t, data)
			assertErr(t, c.Validate(), []string{want})
		})
	}
}

func assertErr(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// handshake runs a TLS handshake over an in-memory pipe and returns the
// client's view of the connection or the first error from either side.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc, cc := tcpPair(t)
	srv := tls.Server(sc, server)
	cli := tls.Client(cc, client)
	srvErr := make(chan error, 1)
	go func() {
		err := srv.HandshakeContext(ctx)
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		if err != nil {
			err = fmt.Errorf("server: %w", err)
		}
		srvErr <- err
		_ = srv.Close()
	}()
	err := cli.HandshakeContext(ctx)
	if err == nil {
		// Read the server's byte: in TLS 1.3 a client certificate is
		// rejected after the client's handshake has already returned.
		_, err = io.ReadFull(cli, make([]byte, 1))
	}
	state := cli.ConnectionState()
	_ = cli.Close()
	return state, errors.Join(err, <-srvErr)
}

// tcpPair returns both ends of a loopback TCP connection. Unlike net.Pipe
// it buffers, so an alert written by one side never blocks on the other.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	return server, client
}

func TestLoadHandshake(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	mtlsServer := Config{CAFile: pki.CA, CertFile: pki.ServerCert, KeyFile: pki.ServerKey}
	plainServer := Config{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}
	tests := []struct {
		name        string
		server      Config
		client      Config
		wantErr     string
		wantVersion uint16
	}{
		{"server auth only", plainServer, Config{CAFile: pki.CA, ServerName: "localhost"}, "", tls.VersionTLS13},
		{"mTLS", mtlsServer, Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ServerName: "127.0.0.1"}, "", tls.VersionTLS13},
		{"mTLS without client cert", mtlsServer, Config{CAFile: pki.CA, ServerName: "localhost"}, "certificate", 0},
		{"unknown CA", plainServer, Config{CAFile: pki.OtherCA, ServerName: "localhost"}, "unknown authority", 0},
		{"wrong server name", plainServer, Config{CAFile: pki.CA, ServerName: "plc.example"}, "plc.example", 0},
		{"insecure skip verify", plainServer, Config{InsecureSkipVerify: true}, "", tls.VersionTLS13},
		{"client cert from another CA", Config{CAFile: pki.OtherCA, CertFile: pki.ServerCert, KeyFile: pki.ServerKey},
			Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ServerName: "localhost"}, "certificate", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := tt.server.LoadServer()
			if err != nil {
				t.Fatal(err)
			}
			cc, err := tt.client.Load()
			if err != nil {
				t.Fatal(err)
			}
			state, err := handshake(t, sc, cc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("handshake error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if state.Version != tt.wantVersion {
				t.Errorf("version %x, want %x", state.Version, tt.wantVersion)
			}
		})
	}
}

func TestMinVersion(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	sc, err := (&Config{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}).LoadServer()
	if err != nil {
		t.Fatal(err)
	}
	sc.MaxVersion = tls.VersionTLS12 // an old server
	for _, tt := range []struct {
		min     string
		wantErr bool
	}{{"", false}, {"1.2", false}, {"1.3", true}} {
		t.Run("min_"+tt.min, func(t *testing.T) {
			cc, err := (&Config{CAFile: pki.CA, ServerName: "localhost", MinVersion: tt.min}).Load()
			if err != nil {
				t.Fatal(err)
			}
			_, err = handshake(t, sc, cc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("handshake error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	pki := tlstest.Generate(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name   string
		cfg    Config
		server bool
		want   string
	}{
		{"missing ca", Config{CAFile: missing}, false, "read ca_file"},
		{"ca not pem", Config{CAFile: notPEM}, false, "holds no PEM certificate"},
		{"missing key", Config{CertFile: pki.ClientCert, KeyFile: missing}, false, "load key pair"},
		{"mismatched key", Config{CertFile: pki.ClientCert, KeyFile: pki.ServerKey}, false, "load key pair"},
		{"bad version", Config{MinVersion: "2"}, false, "not a supported TLS version"},
		{"server without cert", Config{CAFile: pki.CA}, true, "needs cert_file and key_file"},
		{"server missing ca", Config{CAFile: missing, CertFile: pki.ServerCert, KeyFile: pki.ServerKey}, true, "read ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.server {
				_, err = tt.cfg.LoadServer()
			} else {
				_, err = tt.cfg.Load()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			// A file that is missing or wrong will not be fixed by
			// retrying: the engine marks the component failed.
			if !errors.Is(err, pipeline.ErrPermanent) {
				t.Fatalf("error = %v, not pipeline.ErrPermanent", err)
			}
		})
	}
}
