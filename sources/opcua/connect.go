package opcua

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
)

// connect discovers the server's endpoints, picks the one matching the
// configured policy and mode, checks the server certificate against the
// trust list and opens a session. The client's own reconnect logic is
// off: it gives up on a refused connection (a restarting server), so the
// source rebuilds sessions itself.
func (s *Source) connect(ctx context.Context, stateCh chan opcua.ConnState) (*opcua.Client, error) {
	cfg := &s.cfg
	pol, mode := policies[cfg.SecurityPolicy].uri, modes[cfg.SecurityMode]
	tokType := tokenType(cfg.Auth.Type)

	limits := sessionLimits(cfg.MaxMessageSize)
	eps, err := opcua.GetEndpoints(ctx, cfg.Endpoint, append(limits, opcua.DialTimeout(cfg.RequestTimeout), opcua.RequestTimeout(cfg.RequestTimeout))...)
	if err != nil {
		return nil, fmt.Errorf("get endpoints from %s: %w", cfg.Endpoint, err)
	}
	ep, err := selectEndpoint(eps, pol, mode, tokType)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	s.log.Info("endpoint selected", "endpoint", cfg.Endpoint, "advertised_url", ep.EndpointURL,
		"security_policy", cfg.SecurityPolicy, "security_mode", cfg.SecurityMode,
		"security_level", ep.SecurityLevel, "auth", cfg.Auth.Type)

	opts := []opcua.Option{
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(cfg.RequestTimeout),
		opcua.DialTimeout(cfg.RequestTimeout),
		opcua.SessionTimeout(cfg.SessionTimeout),
		opcua.ApplicationName("Weir"),
		opcua.ApplicationURI(cfg.ApplicationURI),
		opcua.ProductURI("urn:weir"),
		opcua.SessionName("weir"),
		opcua.StateChangedCh(stateCh),
	}
	opts = append(opts, limits...)
	p := pki{dir: cfg.PKIDir, log: s.log}
	if pol != ua.SecurityPolicyURINone {
		der, key, err := p.ownCert(cfg.ApplicationURI)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opcua.Certificate(der), opcua.PrivateKey(key))
	}
	if cfg.PKIDir != "" && len(ep.ServerCertificate) > 0 && (pol != ua.SecurityPolicyURINone || tokType != ua.UserTokenTypeAnonymous) {
		// The certificate signs the channel, or encrypts the password:
		// either way it must be one the operator trusts.
		if err := p.checkServer(ep.ServerCertificate, cfg.AutoTrustFirst); err != nil {
			return nil, err
		}
	}
	switch tokType {
	case ua.UserTokenTypeUserName:
		pass, err := cfg.Auth.Password.Resolve()
		if err != nil {
			return nil, fmt.Errorf("auth.password: %w", err)
		}
		opts = append(opts, opcua.AuthUsername(cfg.Auth.Username, pass))
	case ua.UserTokenTypeCertificate:
		der, err := readCert(cfg.Auth.CertFile)
		if err != nil {
			return nil, fmt.Errorf("auth.cert_file: %w", err)
		}
		key, err := readKey(cfg.Auth.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.key_file: %w", err)
		}
		opts = append(opts, opcua.AuthCertificate(der), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	// After the Auth option: it picks the token policy of the endpoint.
	opts = append(opts, opcua.SecurityFromEndpoint(ep, tokType))

	c, err := opcua.NewClient(cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("connect %s: %w", cfg.Endpoint, err)
	}
	return c, nil
}

// Chunk sizes of the UA-TCP connection: the receive and send buffers this
// client offers in HEL (the server may not send larger chunks), and the
// payload a chunk is assumed to carry at least when the chunk count is
// derived from the message size (half a buffer; servers fill it).
const (
	chunkBuffer     = 0xffff
	chunkPayloadMin = 32 << 10
)

// sessionLimits are the UA-TCP limits every connection of the source
// announces in HEL and, with the weir patch in uacp (boundACK) and uasc,
// enforces on what it receives: chunks of at most 64 KiB, messages of at
// most maxMessage bytes in at most maxMessage/32 KiB chunks. What one
// server can make the gateway buffer is then about twice maxMessage (the
// chunks, then the merged message), whatever the server's ACK says; without
// them a server's ACK set the limits (up to 1,024 chunks, 64 MiB).
func sessionLimits(maxMessage int) []opcua.Option {
	chunks := (maxMessage + chunkPayloadMin - 1) / chunkPayloadMin
	return []opcua.Option{
		opcua.ReceiveBufferSize(chunkBuffer),
		opcua.SendBufferSize(chunkBuffer),
		opcua.MaxMessageSize(uint32(maxMessage)),
		opcua.MaxChunkCount(uint32(chunks)),
	}
}

func tokenType(auth string) ua.UserTokenType {
	switch auth {
	case "username":
		return ua.UserTokenTypeUserName
	case "certificate":
		return ua.UserTokenTypeCertificate
	}
	return ua.UserTokenTypeAnonymous
}

// selectEndpoint picks the endpoint with the highest security level that
// has the policy, the mode and the user token type; the error lists what
// the server offers instead.
func selectEndpoint(eps []*ua.EndpointDescription, policy string, mode ua.MessageSecurityMode, tok ua.UserTokenType) (*ua.EndpointDescription, error) {
	var best *ua.EndpointDescription
	var offered []string
	for _, ep := range eps {
		if ep == nil {
			continue
		}
		var toks []string
		hasTok := false
		for _, t := range ep.UserIdentityTokens {
			if t == nil {
				continue
			}
			toks = append(toks, strings.TrimPrefix(t.TokenType.String(), "UserTokenType"))
			hasTok = hasTok || t.TokenType == tok
		}
		offered = append(offered, fmt.Sprintf("%s/%s [%s]", shortPolicy(ep.SecurityPolicyURI),
			strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode"), strings.Join(toks, ",")))
		if ep.SecurityPolicyURI != policy || ep.SecurityMode != mode || !hasTok {
			continue
		}
		if best == nil || ep.SecurityLevel > best.SecurityLevel {
			best = ep
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no endpoint with policy %s, mode %s and %s login; the server offers %s",
			shortPolicy(policy), strings.TrimPrefix(mode.String(), "MessageSecurityMode"),
			strings.TrimPrefix(tok.String(), "UserTokenType"), strings.Join(offered, "; "))
	}
	return best, nil
}

func shortPolicy(uri string) string {
	if i := strings.LastIndexByte(uri, '#'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// readEURanges reads the EURange property of every item with a percent
// deadband, for the client-side filter. A node without one keeps
// delivering every change, with a warning.
func (s *Source) readEURanges(ctx context.Context, c *opcua.Client) {
	var idx []int
	var paths []*ua.BrowsePath
	for i, it := range s.items {
		if it.node == nil || it.deadband == nil || it.deadband.Type != "percent" {
			continue
		}
		idx = append(idx, i)
		paths = append(paths, &ua.BrowsePath{StartingNode: it.node, RelativePath: &ua.RelativePath{Elements: []*ua.RelativePathElement{{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasProperty), IncludeSubtypes: true,
			TargetName: &ua.QualifiedName{NamespaceIndex: 0, Name: "EURange"},
		}}}})
	}
	if len(idx) == 0 {
		return
	}
	var tr *ua.TranslateBrowsePathsToNodeIDsResponse
	err := c.Send(ctx, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: paths}, func(v ua.Response) error {
		r, ok := v.(*ua.TranslateBrowsePathsToNodeIDsResponse)
		if !ok {
			return fmt.Errorf("unexpected response %T", v)
		}
		tr = r
		return nil
	})
	if err != nil || len(tr.Results) != len(idx) {
		s.log.Warn("cannot look up EURange for percent deadbands; delivering every change", "error", err)
		return
	}
	var nodes []*ua.ReadValueID
	var owners []int
	for k, r := range tr.Results {
		if r == nil || r.StatusCode != ua.StatusOK || len(r.Targets) == 0 || r.Targets[0].TargetID == nil {
			s.log.Warn("node has no EURange property; its percent deadband is not applied", "tag", s.items[idx[k]].path)
			continue
		}
		nodes = append(nodes, &ua.ReadValueID{NodeID: r.Targets[0].TargetID.NodeID, AttributeID: ua.AttributeIDValue})
		owners = append(owners, idx[k])
	}
	if len(nodes) == 0 {
		return
	}
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: nodes})
	if err != nil || len(res.Results) != len(nodes) {
		s.log.Warn("cannot read EURange for percent deadbands; delivering every change", "error", err)
		return
	}
	for k, dv := range res.Results {
		var rg *ua.Range
		if dv != nil && dv.Value != nil {
			if eo, ok := dv.Value.Value().(*ua.ExtensionObject); ok && eo != nil {
				rg, _ = eo.Value.(*ua.Range)
			}
		}
		if rg == nil || rg.High <= rg.Low {
			s.log.Warn("unusable EURange; percent deadband not applied", "tag", s.items[owners[k]].path)
			continue
		}
		it := s.items[owners[k]]
		it.euLow, it.euHigh, it.hasEU = rg.Low, rg.High, true
	}
}

// Dial opens a session as the source would, with the same endpoint
// selection, certificate store and trust rules, for tools such as `weir
// browse`. Only the connection keys of cfg are used; it need not list
// items. The caller closes the client.
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*opcua.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Subscriptions, cfg.Poll = nil, nil
	cfg.setDefaults()
	if _, ok := policies[cfg.SecurityPolicy]; !ok {
		return nil, fmt.Errorf("unknown security policy %q", cfg.SecurityPolicy)
	}
	if _, ok := modes[cfg.SecurityMode]; !ok {
		return nil, fmt.Errorf("unknown security mode %q", cfg.SecurityMode)
	}
	if cfg.needsPKI() && cfg.PKIDir == "" {
		return nil, fmt.Errorf("a certificate store (pki_dir) is needed for policy %s or auth %s", cfg.SecurityPolicy, cfg.Auth.Type)
	}
	s := &Source{cfg: cfg, log: log}
	return s.connect(ctx, nil)
}
