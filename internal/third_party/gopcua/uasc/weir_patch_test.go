package uasc

import (
	"testing"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
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
