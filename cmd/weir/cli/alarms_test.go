package cli

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
)

func TestAlarmsCmd(t *testing.T) {
	m, err := alarms.New(alarms.Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Define(alarms.Def{Name: "hot", Priority: alarms.High, Message: "product too hot"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Raise("hot", time.Now()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&api.Alarms{Store: m}).Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dataDir := t.TempDir()
	remove, err := writeAPIAddr(dataDir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	emptyDir := t.TempDir()
	staleDir := t.TempDir() // a gateway killed -9 left its address behind
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := writeAPIAddr(staleDir, "http://"+ln.Addr().String()); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{"list", []string{"list", "-api", srv.URL}, "hot   unack  high", ""},
		{"list, gateway found from its data dir", []string{"list", "--data-dir", dataDir}, "hot   unack  high", ""},
		{"-api wins over the data dir", []string{"list", "--data-dir", emptyDir, "-api", srv.URL}, "hot   unack  high", ""},
		{"no gateway in the data dir", []string{"list", "--data-dir", emptyDir}, "", "no running gateway found in " + emptyDir},
		{"stale address file", []string{"list", "--data-dir", staleDir}, "", "may have stopped"},
		{"flags after the name", []string{"ack", "hot", "-api", srv.URL, "-comment", "on it"}, "hot: acked\n", ""},
		{"list filtered", []string{"list", "-api", srv.URL, "-state", "acked"}, "NAME  STATE  PRIORITY  SHELVED  MESSAGE\n", ""},
		{"ack again", []string{"ack", "-api", srv.URL, "hot"}, "", "409 Conflict: alarms: hot is acked: nothing to acknowledge"},
		{"shelve", []string{"shelve", "-api", srv.URL, "-for", "30m", "-reason", "swap", "hot"}, "hot: acked, shelved until", ""},
		{"unshelve", []string{"unshelve", "-api", srv.URL, "hot"}, "hot: acked\n", ""},
		{"unknown alarm", []string{"ack", "-api", srv.URL, "nope"}, "", "404 Not Found: no such alarm"},
		{"shelve without time", []string{"shelve", "-api", srv.URL, "hot"}, "", "usage"},
		{"no name", []string{"ack", "-api", srv.URL}, "", "usage"},
		{"bad verb", []string{"silence"}, "", "usage"},
		{"bad api", []string{"list", "-api", "ftp://x"}, "", "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runNamed(t.Context(), "alarms", tt.args, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v (stderr %s)", err, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("stdout %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
	if a, _ := m.Get("hot"); a.AckedBy != "api:anonymous" || a.AckComment != "on it" {
		t.Fatalf("alarm %+v", a)
	}
}
