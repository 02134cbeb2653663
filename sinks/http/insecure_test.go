package httpsink

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// A receiver that repeats the request's headers in its error page, and
// redirects to a URL with credentials, does not get the token or the
// password into the gateway's log, errors or status.
func TestSecretNotEchoedFromReceiver(t *testing.T) {
	const token = "tok-Zq81!x"
	t.Setenv("WEIR_TEST_ECHO_TOKEN", token)
	for _, code := range []int{http.StatusUnauthorized, http.StatusFound} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://u:"+token+"@elsewhere.example/x")
			w.WriteHeader(code)
			_, _ = w.Write([]byte("bad credentials: " + r.Header.Get("Authorization")))
		}))
		var logs bytes.Buffer
		s, err := New(Config{URL: srv.URL, Timeout: 5 * time.Second,
			AuthHeader: AuthHeader{Prefix: "Bearer ", Value: conf.Secret{Env: "WEIR_TEST_ECHO_TOKEN"}}},
			slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		werr := s.Write(ctx, []model.Sample{{Path: "a/b", Value: model.Float(1), SourceTime: 1}})
		st := s.Status()
		cancel()
		_ = s.Close(context.Background())
		srv.Close()
		if werr == nil {
			t.Fatalf("status %d: Write succeeded", code)
		}
		if !strings.Contains(logs.String(), "bad credentials") && code == http.StatusUnauthorized {
			t.Fatalf("the test saw no body in the log:\n%s", logs.String())
		}
		for what, text := range map[string]string{"log": logs.String(), "error": werr.Error(), "status": st.LastError} {
			if strings.Contains(text, token) {
				t.Errorf("status %d: %s holds the token:\n%s", code, what, text)
			}
		}
	}
}
