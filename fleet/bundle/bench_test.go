package bundle

import (
	"os"
	"path/filepath"
	"testing"
)

// Costs quoted in README.md ("Costs"). Not assertions: run with
// go test -run '^$' -bench . ./fleet/bundle
func BenchmarkRender(b *testing.B) {
	read := func(f string) []byte {
		d, err := os.ReadFile(filepath.Join("testdata", "layers", f))
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	layers := []Layer{{Kind: KindBase, Data: read("base.yaml")}, {Kind: KindGroup, Name: "eu", Data: read("group-eu.yaml")},
		{Kind: KindGroup, Name: "line3", Data: read("group-line3.yaml")}, {Kind: KindSite, Name: "s1", Data: read("site-s1.yaml")}}
	for b.Loop() {
		if _, err := Render("s1", layers); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBundle(b *testing.B) *Bundle {
	r, err := Render("s1", []Layer{base("")})
	if err != nil {
		b.Fatal(err)
	}
	bb, err := signer(1).Issue(r, 1, t0)
	if err != nil {
		b.Fatal(err)
	}
	return bb
}

func BenchmarkDecodeVerify(b *testing.B) {
	bb := benchBundle(b)
	wire := bb.Encode()
	trust, _ := NewTrustStore(signer(1).Public())
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		d, err := Decode(wire)
		if err != nil {
			b.Fatal(err)
		}
		if err := trust.Verify(d, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	r, err := Render("s1", []Layer{base("")})
	if err != nil {
		b.Fatal(err)
	}
	s := signer(1)
	for b.Loop() {
		if _, err := s.Issue(r, 1, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply includes the atomic write and its two fsyncs.
func BenchmarkApply(b *testing.B) {
	r, err := Render("s1", []Layer{base("")})
	if err != nil {
		b.Fatal(err)
	}
	hub := signer(1)
	trust, _ := NewTrustStore(hub.Public())
	s, err := OpenStore(b.TempDir(), "s1", trust, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	v := uint64(0)
	for b.Loop() {
		v++
		bb, _ := hub.Issue(r, v, t0)
		if err := s.Apply(bb, nil); err != nil {
			b.Fatal(err)
		}
	}
}
