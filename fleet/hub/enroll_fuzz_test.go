package hub

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

// FuzzParseEnroll: any body is refused or accepted without a panic; an
// accepted one is a valid site, user key, box key and token form.
func FuzzParseEnroll(f *testing.F) {
	u, _ := nkeys.CreateUser()
	pub, _ := u.PublicKey()
	box := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tok := tokenPrefix + strings.Repeat("ab", 32)
	f.Add([]byte(`{"site":"s1","token":"` + tok + `","site_nkey_public":"` + pub + `","site_box_public":"` + box + `"}`))
	f.Add([]byte(`{"site":"S.1","token":"x"}`))
	f.Add([]byte(`{"site":"s1"} {}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"site":"s1","extra":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req EnrollRequest
		if err := parseEnroll(body, &req); err != nil {
			return
		}
		if !ValidSite(req.Site) || !nkeys.IsValidPublicUserKey(req.SiteNKey) || !strings.HasPrefix(req.Token, tokenPrefix) {
			t.Fatalf("accepted %+v", req)
		}
	})
}
