package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate/mqttcmd"
)

const signTestKey = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"

// TestCommandSign: what weir command sign prints opens with the gateway's
// verifier as the caller, decodes as the kind's command, is fresh once
// and never shows the key, also when it fails.
func TestCommandSign(t *testing.T) {
	t.Setenv("WEIR_TEST_SIGN_KEY", signTestKey)
	t.Setenv("WEIR_TEST_SIGN_SHORT", "c0ffee")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(signTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := filepath.Join(dir, "write.json")
	alarm := filepath.Join(dir, "alarm.json")
	_ = os.WriteFile(write, []byte(`{"path":"acme/line1/sp","value":120,"reason":"recipe B"}`), 0o600)
	_ = os.WriteFile(alarm, []byte(`{"name":"hot","action":"shelve","for":"30m","issued_at":1764112800000,"id":"a-1"}`), 0o600)
	verifier := func(kind string) *cmdproof.Verifier {
		v, err := cmdproof.NewVerifier(cmdproof.Config{MaxAge: time.Minute, Callers: []cmdproof.Caller{
			{Name: "mes", Key: conf.Secret{Env: "WEIR_TEST_SIGN_KEY"}, Role: security.Operator}}}, kind)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("write, stamped", func(t *testing.T) {
		code, out, errOut := run("command", "sign", "-caller", "mes", "-key-env", "WEIR_TEST_SIGN_KEY", write)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		v := verifier(cmdproof.KindWrite)
		who, raw, err := v.Open([]byte(strings.TrimSpace(out)))
		if err != nil || who.Name != "mes" {
			t.Fatalf("open: %v", err)
		}
		cmd, err := mqttcmd.DecodeCommand(raw)
		if err != nil || cmd.Path != "acme/line1/sp" || cmd.ID == "" || time.Since(cmd.IssuedAt) > time.Minute {
			t.Fatalf("command %+v: %v", cmd, err)
		}
		if err := v.Fresh(who, cmd.ID, cmd.IssuedAt, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := v.Fresh(who, cmd.ID, cmd.IssuedAt, time.Now()); err == nil {
			t.Fatal("replay accepted")
		}
		if strings.Contains(out+errOut, signTestKey) {
			t.Fatal("key printed")
		}
	})
	t.Run("alarm, key file, kept as written", func(t *testing.T) {
		code, out, errOut := run("command", "sign", "-kind", "alarm", "-caller", "mes", "-key-file", keyFile, alarm)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, `"cmd":{"name":"hot","action":"shelve","for":"30m","issued_at":1764112800000,"id":"a-1"}`) {
			t.Fatalf("command re-encoded: %s", out)
		}
		_, raw, err := verifier(cmdproof.KindAlarm).Open([]byte(strings.TrimSpace(out)))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := alarms.DecodeCommand(raw); err != nil || c.Action != alarms.ActionShelve {
			t.Fatalf("%+v %v", c, err)
		}
		if _, _, err := verifier(cmdproof.KindWrite).Open([]byte(strings.TrimSpace(out))); err == nil {
			t.Fatal("an alarm command opened as a write command")
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no caller", []string{"-key-env", "WEIR_TEST_SIGN_KEY", write}, 2, ""},
		{"two keys", []string{"-caller", "mes", "-key-env", "A", "-key-file", keyFile, write}, 2, ""},
		{"bad kind", []string{"-caller", "mes", "-key-env", "WEIR_TEST_SIGN_KEY", "-kind", "x", write}, 2, ""},
		{"short key", []string{"-caller", "mes", "-key-env", "WEIR_TEST_SIGN_SHORT", write}, 1, "at least 32"},
		{"unset key", []string{"-caller", "mes", "-key-env", "WEIR_TEST_SIGN_UNSET", write}, 1, "not set"},
		{"not an object", []string{"-caller", "mes", "-key-env", "WEIR_TEST_SIGN_KEY", keyFile}, 1, "one JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(append([]string{"command", "sign"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if strings.Contains(out+errOut, signTestKey) || strings.Contains(out+errOut, "c0ffee\n") {
				t.Fatalf("key shown: %s %s", out, errOut)
			}
		})
	}
}
