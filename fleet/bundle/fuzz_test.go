package bundle

import (
	"bytes"
	"testing"
	"time"
)

// Bundles and rotation statements reach the site from the network: these
// targets run their decoders on anything (make fuzz runs them under a
// memory cap, scripts/fuzz.sh; the default test run only the seeds).

func fuzzSeeds(f *testing.F) [][]byte {
	hub := signer(1)
	r, err := Render("s1", []Layer{base("")})
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for v := uint64(1); v <= 2; v++ {
		b, err := hub.Issue(r, v, t0)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Encode())
	}
	return seeds
}

// FuzzDecode: no input panics or allocates past its size's bound, and
// what decodes re-encodes to the same bytes (one encoding per bundle).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte(bundleDomain + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatalf("decoded bundle re-encodes differently")
		}
	})
}

// FuzzVerify: only the bundles the hub signed verify, byte for byte.
func FuzzVerify(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	trust, err := NewTrustStore(signer(1).Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		if trust.Verify(b, t0) != nil {
			return
		}
		for _, s := range seeds {
			if bytes.Equal(s, data) {
				return
			}
		}
		t.Fatalf("a bundle the hub did not sign verifies")
	})
}

// FuzzDecodeRotation: no input panics; what decodes re-encodes the same.
func FuzzDecodeRotation(f *testing.F) {
	a, b := signer(1), signer(2)
	f.Add(a.AddKey(b.Public(), t0, t0).Encode())
	f.Add(a.RetireKey(b.KeyID, t0.Add(time.Hour)).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRotation(data)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), data) {
			t.Fatalf("decoded rotation re-encodes differently")
		}
	})
}

// FuzzRender: a layer (outside input to the hub) never panics the render,
// and a rendering renders to itself.
func FuzzRender(f *testing.F) {
	f.Add([]byte("log: {level: debug}\n"))
	f.Add([]byte("sinks:\n  - {name: uns, remove: true}\n"))
	f.Add([]byte("sinks:\n  - name: x\n    mqtt: {url: 'mqtts://b:8883', topic_prefix: a, password: '${secret:P}'}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Render("s1", []Layer{base(""), {Kind: KindSite, Name: "s1", Data: data}})
		if err != nil {
			return
		}
		again, err := Render("s1", []Layer{{Kind: KindBase, Data: r.Config}})
		if err != nil || again.Hash != r.Hash {
			t.Fatalf("rendering does not render to itself (%v):\n%s", err, r.Config)
		}
	})
}
