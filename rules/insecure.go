package rules

import (
	"net/http"
	"net/url"

	"github.com/weir-edge/weir/internal/conf"
)

// Transports describes a webhook call for the insecure-transport rule
// (conf.Transport): a credential header (Authorization, Proxy-Authorization
// or an API key header) is sent with every call, in clear over http://;
// the problem sits at headers (a header name would read as code).
// The TLS settings are rule_actions.tls, shared by every call, and judged
// there (see ActionsConfig.Transports).
func (a *HTTPAction) Transports() []conf.Transport {
	u, err := url.Parse(a.URL)
	if err != nil || a.URL == "" {
		return nil // Validate reports it
	}
	t := conf.Transport{
		Peer:          "webhook " + u.Host,
		Host:          u.Hostname(),
		Secure:        u.Scheme == "https",
		Fix:           "use an https:// url",
		AllowInsecure: a.AllowInsecure,
	}
	for k := range a.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "X-Auth-Token":
			t.Credentials = "headers"
		}
	}
	return []conf.Transport{t}
}

// Transports reports rule_actions.tls.insecure_skip_verify, which every
// https:// call shares.
func (c *ActionsConfig) Transports() []conf.Transport {
	if !c.TLS.InsecureSkipVerify {
		return nil
	}
	return []conf.Transport{{Peer: "every https:// webhook", Secure: true, SkipVerify: "tls.insecure_skip_verify"}}
}

var (
	_ conf.Transporter = (*HTTPAction)(nil)
	_ conf.Transporter = (*ActionsConfig)(nil)
)
