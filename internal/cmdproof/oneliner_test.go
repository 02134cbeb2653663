package cmdproof

import (
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestOneLiners: the openssl and python one-liners in the README compute
// the same MAC as Sign, so a user can sign without weir.
func TestOneLiners(t *testing.T) {
	cmd := `{"path":"a/b","value":1,"issued_at":1,"id":"x"}`
	key, _ := hex.DecodeString(aliceKeyHex)
	want := hex.EncodeToString(MAC(key, KindWrite, "alice", []byte(cmd)))
	tools := []struct {
		name, bin, script string
	}{
		{"openssl", "openssl", `printf 'weir-cmd-v1\nwrite\nalice\n%s' "$CMD" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$ALICE_CMD_KEY -r | cut -d' ' -f1`},
		{"python", "python3", `python3 -c 'import hmac,hashlib,os; print(hmac.new(bytes.fromhex(os.environ["ALICE_CMD_KEY"]), ("weir-cmd-v1\nwrite\nalice\n"+os.environ["CMD"]).encode(), hashlib.sha256).hexdigest())'`},
	}
	for _, tt := range tools {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath(tt.bin); err != nil {
				t.Skipf("%s not installed", tt.bin)
			}
			c := exec.Command("sh", "-c", tt.script)
			c.Env = append(os.Environ(), "CMD="+cmd, "ALICE_CMD_KEY="+aliceKeyHex)
			out, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Fatalf("%s gives %s, Sign %s", tt.name, got, want)
			}
		})
	}
}
