package uasc

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/uacp"
	"github.com/weir-edge/weir/internal/third_party/gopcua/uapolicy"
)

// A chunk shorter than its headers and signature fails instead of
// panicking (weir patch in verifyAndDecrypt): its length is not covered by
// the signature, so anyone on the path of a signed channel could send one.
func TestShortSignedChunk(t *testing.T) {
	nonce := make([]byte, 32)
	for _, mode := range []ua.MessageSecurityMode{ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt} {
		algo, err := uapolicy.Symmetric(ua.SecurityPolicyURIBasic256Sha256, nonce, nonce)
		if err != nil {
			t.Fatal(err)
		}
		c := &channelInstance{
			sc:   &SecureChannel{cfg: &Config{SecurityMode: mode, SecurityPolicyURI: ua.SecurityPolicyURIBasic256Sha256}},
			algo: algo,
		}
		m := &MessageChunk{MessageHeader: &MessageHeader{SymmetricSecurityHeader: &SymmetricSecurityHeader{}}}
		for _, n := range []int{0, 8, 16, 20, 40} {
			if _, err := c.verifyAndDecrypt(m, make([]byte, n)); err == nil {
				t.Errorf("mode %v: a %d-byte chunk verified", mode, n)
			}
		}
	}
}

// A chunk of 8 to 11 bytes (uacp accepts it: its size covers the 8-byte
// UA-TCP header) is shorter than the secure channel header; since
// uacp.Receive returns a slice of the chunk's size (weir patch), readChunk
// must check before it slices.
func TestChunkShorterThanHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("MSGF\x0a\x00\x00\x00\x01\x02"))
		_, _ = io.Copy(io.Discard, c) // until the client closes
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	uc, err := uacp.NewConn(nc.(*net.TCPConn), &uacp.Acknowledge{ReceiveBufSize: 0xffff, SendBufSize: 0xffff})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	s := &SecureChannel{c: uc}
	if _, err := s.readChunk(); err == nil || !strings.Contains(err.Error(), "shorter than its header") {
		t.Fatalf("readChunk: %v, want a short-chunk error", err)
	}
}
