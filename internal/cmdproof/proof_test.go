package cmdproof

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/security"
)

const (
	aliceKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	bobKeyB64   = "Ym9iLWtleS1ib2Ita2V5LWJvYi1rZXktYm9iLWtleS0xMjM0NTY3OA==" // 40 bytes
)

func testVerifier(t *testing.T) *Verifier {
	t.Helper()
	t.Setenv("CMDPROOF_ALICE", aliceKeyHex)
	t.Setenv("CMDPROOF_BOB", bobKeyB64)
	v, err := NewVerifier(Config{MaxAge: 10 * time.Second, Callers: []Caller{
		{Name: "alice", Key: conf.Secret{Env: "CMDPROOF_ALICE"}, Role: security.Operator},
		{Name: "bob", Key: conf.Secret{Env: "CMDPROOF_BOB"}, Role: security.Viewer},
	}}, KindWrite)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := DecodeKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDecodeKey(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"hex", aliceKeyHex, 32, ""},
		{"HEX", strings.ToUpper(aliceKeyHex), 32, ""},
		{"base64", bobKeyB64, 40, ""},
		{"base64 raw url", strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(bobKeyB64), "="), 40, ""},
		{"empty", "", 0, "empty"},
		{"short hex", "00112233", 0, "at least 32"},
		{"short base64", "c2hvcnQ=", 0, "at least 32"},
		{"garbage", "this is not a key!!", 0, "neither hex nor base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DecodeKey(tt.in)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if err == nil && len(k) != tt.n {
				t.Fatalf("%d bytes", len(k))
			}
			if err != nil && tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("error repeats the key: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := Caller{Name: "alice", Key: conf.Secret{Env: "K"}, Role: security.Operator}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{Callers: []Caller{good}}, nil},
		{"no callers", Config{}, []string{"callers: at least one"}},
		{"bad proof", Config{Proof: "none", Callers: []Caller{good}}, []string{"proof"}},
		{"max_age", Config{MaxAge: 2 * time.Hour, Callers: []Caller{good}}, []string{"max_age"}},
		{"caller problems", Config{Callers: []Caller{{Name: "a b", Role: "god"}, good, good}},
			[]string{"callers[0].name", "callers[0].key: is required", "callers[0].role", "callers[2].name: \"alice\" is listed twice"}},
		{"pasted key", Config{Callers: []Caller{{Name: "x", Key: conf.Secret{Env: aliceKeyHex + "!"}, Role: security.Admin}}},
			[]string{"callers[0].key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (len(tt.want) == 0) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), aliceKeyHex) {
				t.Fatalf("error echoes the key: %v", err)
			}
		})
	}
}

func TestNewVerifierKeyErrors(t *testing.T) {
	t.Setenv("CMDPROOF_EMPTY", "")
	t.Setenv("CMDPROOF_SHORT", "deadbeefdeadbeef")
	for _, env := range []string{"CMDPROOF_EMPTY", "CMDPROOF_SHORT", "CMDPROOF_UNSET_XYZ"} {
		_, err := NewVerifier(Config{Callers: []Caller{{Name: "alice", Key: conf.Secret{Env: env}, Role: security.Operator}}}, KindWrite)
		if err == nil || !strings.Contains(err.Error(), "caller alice: key env:"+env) {
			t.Fatalf("%s: %v", env, err)
		}
		if strings.Contains(err.Error(), "deadbeef") {
			t.Fatalf("key in error: %v", err)
		}
	}
}

func TestOpen(t *testing.T) {
	v := testVerifier(t)
	alice, bob := mustKey(t, aliceKeyHex), mustKey(t, bobKeyB64)
	cmd := []byte(`{"path":"a/b","value":1,"issued_at":1,"id":"x"}`)
	signed := func(key []byte, kind, caller string) []byte {
		b, err := Sign(key, kind, caller, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := signed(alice, KindWrite, "alice")
	tampered := bytes.Replace(good, []byte(`"value":1`), []byte(`"value":9`), 1)
	tests := []struct {
		name  string
		msg   []byte
		short string
		who   string
	}{
		{"valid", good, "", "alice"},
		{"valid with spaces around cmd", bytes.Replace(good, []byte(`"cmd":{`), []byte(`"cmd":   {`), 1), "", "alice"},
		{"bob", signed(bob, KindWrite, "bob"), "", "bob"},
		{"unsigned, names itself", []byte(`{"path":"a/b","value":1,"user":"alice","issued_at":1}`), "no proof", ""},
		{"no mac", []byte(`{"caller":"alice","cmd":{"path":"a/b"}}`), "no proof", ""},
		{"not JSON", []byte(`write a/b 1`), "no proof", ""},
		{"tampered", tampered, "bad proof", ""},
		{"wrong key", signed(bob, KindWrite, "alice"), "bad proof", ""},
		{"claims another caller", bytes.Replace(signed(bob, KindWrite, "bob"), []byte(`"caller":"bob"`), []byte(`"caller":"alice"`), 1), "bad proof", ""},
		{"unknown caller", signed(alice, KindWrite, "mallory"), "bad proof", ""},
		{"other kind", signed(alice, KindAlarm, "alice"), "bad proof", ""},
		{"short mac", []byte(`{"caller":"alice","cmd":{},"mac":"00"}`), "bad proof", ""},
		{"cmd not object", []byte(`{"caller":"alice","cmd":[1],"mac":"` + strings.Repeat("0", 64) + `"}`), "malformed", ""},
		{"bad caller", []byte(`{"caller":"a/b","cmd":{},"mac":"` + strings.Repeat("0", 64) + `"}`), "malformed", ""},
		{"trailing", append(append([]byte{}, good...), []byte(` {}`)...), "malformed", ""},
		{"extra field", bytes.Replace(good, []byte(`{"caller"`), []byte(`{"role":"admin","caller"`), 1), "no proof", ""},
		{"huge", append(bytes.Repeat([]byte(" "), MaxMessage), good...), "malformed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, got, err := v.Open(tt.msg)
			if tt.short == "" {
				if err != nil {
					t.Fatal(err)
				}
				if who.Name != tt.who || !bytes.Equal(got, cmd) {
					t.Fatalf("who %+v cmd %s", who, got)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Short != tt.short || err.Error() != "refused: "+tt.short || r.Kind != security.RequestRefused {
				t.Fatalf("err = %#v, want refused: %s", err, tt.short)
			}
			for _, k := range []string{aliceKeyHex, hex.EncodeToString(bob), bobKeyB64} {
				if strings.Contains(r.Detail, k) {
					t.Fatalf("detail has a key: %s", r.Detail)
				}
			}
		})
	}
}

func TestFresh(t *testing.T) {
	v := testVerifier(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	alice := Identity{Name: "alice", Role: security.Operator}
	bob := Identity{Name: "bob", Role: security.Viewer}
	steps := []struct {
		name   string
		who    Identity
		id     string
		issued time.Time
		now    time.Time
		short  string
	}{
		{"first", alice, "1", now, now, ""},
		{"replayed", alice, "1", now, now.Add(time.Second), "replayed"},
		{"same id other caller", bob, "1", now, now, ""},
		{"stale", alice, "2", now.Add(-11 * time.Second), now, "stale"},
		{"future", alice, "3", now.Add(11 * time.Second), now, "stale"},
		{"edge of max_age", alice, "4", now.Add(-10 * time.Second), now, ""},
		{"replay after max_age is stale", alice, "1", now, now.Add(11 * time.Second), "stale"},
		{"no id", alice, "", now, now, "malformed"},
		{"no issued_at", alice, "5", time.Time{}, now, "malformed"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := v.Fresh(s.who, s.id, s.issued, s.now)
			if s.short == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Short != s.short {
				t.Fatalf("err = %v, want %s", err, s.short)
			}
		})
	}
}

// TestFreshBounded: the replay set never exceeds MaxRemembered; live ids
// are not forgotten (busy instead), expired ones make room.
func TestFreshBounded(t *testing.T) {
	v := testVerifier(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	alice := Identity{Name: "alice", Role: security.Operator}
	for i := range MaxRemembered {
		if err := v.Fresh(alice, "id-"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i >> 8), byte(i)}), now, now); err != nil {
			t.Fatal(i, err)
		}
	}
	var r *Refusal
	if err := v.Fresh(alice, "one-more", now, now); !errors.As(err, &r) || r.Short != "busy" {
		t.Fatalf("full set: %v", err)
	}
	later := now.Add(11 * time.Second)
	if err := v.Fresh(alice, "one-more", later, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(v.seen) != 1 {
		t.Fatalf("%d remembered", len(v.seen))
	}
}

func TestAuthorize(t *testing.T) {
	if err := Authorize(Identity{Name: "a", Role: security.Engineer}, security.Operator); err != nil {
		t.Fatal(err)
	}
	var r *Refusal
	err := Authorize(Identity{Name: "b", Role: security.Viewer}, security.Operator)
	if !errors.As(err, &r) || r.Kind != security.AccessDenied || err.Error() != "refused: role" {
		t.Fatalf("%v", err)
	}
}

func TestSignRejects(t *testing.T) {
	k := mustKey(t, aliceKeyHex)
	for _, cmd := range []string{``, `[1]`, `{"a":`, `"x"`} {
		if _, err := Sign(k, KindWrite, "alice", []byte(cmd)); err == nil {
			t.Errorf("signed %q", cmd)
		}
	}
	if _, err := Sign(k, KindWrite, "a b", []byte(`{}`)); err == nil {
		t.Error("signed for a bad caller name")
	}
}

// FuzzOpen: no input panics; whatever opens was signed by a configured
// caller over exactly the returned bytes.
func FuzzOpen(f *testing.F) {
	k := []byte("0123456789abcdef0123456789abcdef")
	good, _ := Sign(k, KindWrite, "alice", []byte(`{"path":"a/b","value":1,"issued_at":1,"id":"x"}`))
	f.Add(good)
	f.Add([]byte(`{"caller":"alice","cmd":{},"mac":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"path":"a/b","user":"alice"}`))
	f.Add([]byte(`{"caller":"alice","cmd":{"a":"\u0000"},"mac":null}`))
	v := &Verifier{kind: KindWrite, maxAge: time.Minute, callers: map[string]caller{"alice": {key: k, role: security.Operator}}, seen: map[string]time.Time{}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		who, cmd, err := v.Open(msg)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Short == "" {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		e, derr := DecodeEnvelope(msg)
		if derr != nil || who.Name != "alice" || !bytes.Equal(cmd, e.Cmd) {
			t.Fatalf("opened %q as %+v", msg, who)
		}
		mac, _ := hex.DecodeString(e.MAC)
		if !bytes.Equal(mac, MAC(k, KindWrite, "alice", cmd)) {
			t.Fatalf("opened with a wrong MAC: %q", msg)
		}
	})
}

func TestBrokerTopic(t *testing.T) {
	cfg := Config{Proof: ProofBrokerTopic, Callers: []Caller{{Name: "alice", Role: security.Operator}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	withKey := Config{Proof: ProofBrokerTopic, Callers: []Caller{{Name: "alice", Key: conf.Secret{Env: "K"}, Role: security.Operator}}}
	if err := withKey.Validate(); err == nil || !strings.Contains(err.Error(), "not used with proof: broker_topic") {
		t.Fatalf("key with broker_topic: %v", err)
	}
	v, err := NewVerifier(cfg, KindWrite)
	if err != nil {
		t.Fatal(err)
	}
	if f := v.Filter("w/cmd"); f != "w/cmd/by/+" {
		t.Fatalf("filter %s", f)
	}
	cmd := []byte(`{"path":"a/b","value":1,"issued_at":1,"id":"x"}`)
	tests := []struct {
		name, topic string
		msg         []byte
		short       string
	}{
		{"alice", "w/cmd/by/alice", cmd, ""},
		{"unknown user", "w/cmd/by/mallory", cmd, "bad proof"},
		{"other topic", "w/cmd", cmd, "no proof"},
		{"deeper", "w/cmd/by/alice/x", cmd, "no proof"},
		{"not an object", "w/cmd/by/alice", []byte(`[1]`), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, got, err := v.OpenMessage("w/cmd", tt.topic, tt.msg)
			if tt.short == "" {
				if err != nil || who.Name != "alice" || who.Role != security.Operator || !bytes.Equal(got, cmd) {
					t.Fatalf("%+v %s %v", who, got, err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Short != tt.short {
				t.Fatalf("err = %v, want %s", err, tt.short)
			}
		})
	}
}

// BenchmarkOpenFresh is the proof's cost per command: envelope decoding,
// the HMAC check and the replay set.
func BenchmarkOpenFresh(b *testing.B) {
	k := []byte("0123456789abcdef0123456789abcdef")
	v := &Verifier{kind: KindWrite, mode: ProofHMAC, maxAge: time.Minute, callers: map[string]caller{"alice": {key: k, role: security.Operator}}, seen: map[string]time.Time{}}
	msg, _ := Sign(k, KindWrite, "alice", []byte(`{"path":"plant1/line2/setpoint","value":42.5,"issued_at":1764112800000,"reason":"recipe B","id":"c-17"}`))
	now := time.UnixMilli(1764112800000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		who, _, err := v.Open(msg)
		if err != nil {
			b.Fatal(err)
		}
		i++
		if i%MaxRemembered == 0 {
			now = now.Add(2 * time.Minute) // let the set drain, as time would
		}
		if err := v.Fresh(who, strconv.Itoa(i), now, now); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOpenMessage: with broker_topic, whatever opens came from a
// configured caller's own topic and is one JSON object's bytes.
func FuzzOpenMessage(f *testing.F) {
	f.Add("w/by/alice", []byte(`{"path":"a/b","value":1,"issued_at":1,"id":"x"}`))
	f.Add("w/by/alice/x", []byte(`{}`))
	f.Add("w/by/", []byte(`{`))
	v := &Verifier{kind: KindWrite, mode: ProofBrokerTopic, maxAge: time.Minute, callers: map[string]caller{"alice": {role: security.Operator}}, seen: map[string]time.Time{}}
	f.Fuzz(func(t *testing.T, topic string, msg []byte) {
		who, cmd, err := v.OpenMessage("w", topic, msg)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		if topic != "w/by/alice" || who.Name != "alice" || len(cmd) == 0 || cmd[0] != '{' {
			t.Fatalf("opened %q on %q as %+v", msg, topic, who)
		}
	})
}
