package audit

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
)

// signedCP is a checkpoint of seq signed by k, in its JSON form.
func signedCP(k ed25519.PrivateKey, node string, seq uint64) Checkpoint {
	cp := Checkpoint{Node: node, Seq: seq, Hash: strings.Repeat("c", 64), Time: t0}
	cp.Sign(k)
	return cp
}

func TestReadCheckpointListForms(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	cp := signedCP(k, "nöde ]\"x", 3) // non-ASCII (syslog BOM) and SD escapes
	js := string(cp.JSON())
	ev := `{"time":"2026-12-07T10:00:00Z","kind":"audit.checkpoint","severity":"info","detail":` + string(mustJSON(js)) + `}`
	sample := `{"value":` + string(mustJSON(ev)) + `,"quality":"good","ts":1,"edge_ts":1,"seq":1}`
	tests := []struct{ name, in string }{
		{"bare", js},
		{"event", ev},
		{"sample", sample},
		{"batch", `{"samples":[{"tag":"audit.checkpoint",` + sample[1:] + `]}`},
		{"http body", `{"node":"n","samples":[{"path":"weir/_security/audit.checkpoint",` + sample[1:] + `]}`},
		{"syslog", `<110>1 2026-12-07T10:00:00.000000Z gw weir 1 audit.checkpoint [weir@32473 kind="audit.checkpoint" node="n\]\"x"] ` + bom + js},
		{"syslog, no SD", `<110>1 - gw weir 1 audit.checkpoint - ` + js},
		{"mosquitto_sub -v (topic, space, payload)", "weir/v1/gw/_security/audit.checkpoint " + sample},
		{"pretty-printed", "{\n  \"detail\": " + string(mustJSON(js)) + "\n}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := ReadCheckpointList(strings.NewReader(tt.in))
			if err != nil || len(list) != 1 || list[0].Sig != cp.Sig {
				t.Fatalf("%v %+v", err, list)
			}
		})
	}
	// Several: newest first, duplicates once; NewestVerified skips what
	// another key signed.
	_, other, _ := ed25519.GenerateKey(nil)
	in := strings.Join([]string{js, string(signedCP(k, "n", 1).JSON()), string(signedCP(other, "n", 9).JSON()), sample, "junk"}, "\n")
	list, err := ReadCheckpointList(strings.NewReader(in))
	if err != nil || len(list) != 3 || list[0].Seq != 9 || list[1].Seq != 3 || list[2].Seq != 1 {
		t.Fatalf("%v %+v", err, list)
	}
	got, skipped, err := NewestVerified(list, k.Public().(ed25519.PublicKey))
	if err != nil || got.Seq != 3 || skipped != 1 {
		t.Fatalf("newest verified %+v, skipped %d, %v", got, skipped, err)
	}
	if _, _, err := NewestVerified(list[:1], k.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("a checkpoint of another key verified")
	}
}

// FuzzReadCheckpoints feeds outside input (what IT stored) to the reader:
// it must not panic, and what it returns must parse as a checkpoint.
func FuzzReadCheckpoints(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(nil)
	js := string(signedCP(k, "n", 1).JSON())
	ev := `{"kind":"audit.checkpoint","detail":` + string(mustJSON(js)) + `}`
	f.Add([]byte(js))
	f.Add([]byte(ev))
	f.Add([]byte(`{"value":` + string(mustJSON(ev)) + `}`))
	f.Add([]byte(`{"node":"n","samples":[{"path":"p","value":` + string(mustJSON(ev)) + `}]}`))
	f.Add([]byte(`<110>1 - gw weir 1 k [weir@32473 a="\]"] ` + js))
	f.Add([]byte("12 <1>1 a b c d e [x\n[[[\"\"\"]]]"))
	f.Add([]byte("weir/v1/n/_security/audit.checkpoint " + js))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := ReadCheckpointList(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, c := range list {
			if _, err := ParseCheckpoint(c.JSON()); err != nil {
				t.Fatalf("returned %s: %v", c.JSON(), err)
			}
		}
	})
}
