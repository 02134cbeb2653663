package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/weir-edge/weir/fleet/bundle"
)

const (
	// maxTokenTTL bounds a token's life; it is also the enrolment bucket's
	// TTL, so a forgotten token disappears by itself.
	maxTokenTTL = 30 * 24 * time.Hour
	// DefaultTokenTTL is a token's life when none is given.
	DefaultTokenTTL = 24 * time.Hour
	tokenPrefix     = "weirenroll_"
	maxEnrollBody   = 8 << 10
	maxGroups       = 32
)

// tokenRecord is a token's entry in weir_enroll (under its SHA-256: the
// token itself is shown once and never stored).
type tokenRecord struct {
	Site    string    `json:"site"`
	Groups  []string  `json:"groups,omitempty"`
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created"`
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token." + hex.EncodeToString(sum[:])
}

// SitePermissions are exactly what a site's credentials allow: publish
// its reports and ask for its desired state and the trust statements;
// receive its desired state, the trust statements and replies on its own
// inbox prefix. Nothing else (no JetStream API, no other site).
func SitePermissions(site string) jwt.Permissions {
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{SubjectReportPrefix + site, SubjectAskDesired + site, SubjectAskTrust}},
		Sub: jwt.Permission{Allow: jwt.StringList{SubjectDesiredPrefix + site, SubjectTrust, InboxPrefix(site) + ".>"}},
	}
}

func checkGroups(groups []string) error {
	if len(groups) > maxGroups {
		return fmt.Errorf("at most %d groups per site", maxGroups)
	}
	for _, g := range groups {
		if !ValidSite(g) {
			return fmt.Errorf("group %q: use 1 to 64 lowercase letters, digits, '_' or '-'", g)
		}
	}
	return nil
}

// CreateToken registers site (with groups, when given) and returns a
// one-time enrolment token valid for ttl (DefaultTokenTTL when 0). The
// token is shown once; only its SHA-256 is stored.
func (h *Hub) CreateToken(ctx context.Context, site string, groups []string, ttl time.Duration) (string, error) {
	if !ValidSite(site) {
		return "", fmt.Errorf("site %q: use 1 to 64 lowercase letters, digits, '_' or '-'", site)
	}
	if err := checkGroups(groups); err != nil {
		return "", err
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 || ttl > maxTokenTTL {
		return "", fmt.Errorf("token ttl %v: use up to %v", ttl, maxTokenTTL)
	}
	if groups != nil {
		if err := h.SetGroups(ctx, site, groups); err != nil {
			return "", err
		}
	} else {
		// Registered now, so a publish before the site enrols already
		// renders it, and its bundle waits for it.
		if err := h.updateSite(ctx, site, func(*SiteRecord) {}); err != nil {
			return "", err
		}
		if _, err := h.republish(ctx, []string{site}, "new site "+site); err != nil {
			return "", err
		}
	}
	token := tokenPrefix + randomHex(32)
	now := h.cfg.Now().UTC()
	rec, _ := json.Marshal(tokenRecord{Site: site, Groups: groups, Expires: now.Add(ttl), Created: now})
	if _, err := kvCreate(ctx, h.enroll, tokenKey(token), rec); err != nil {
		return "", fmt.Errorf("token for site %s: %w", site, err)
	}
	h.audit(ctx, AuditEntry{Action: "token.create", Site: site, Detail: "expires " + now.Add(ttl).Format(time.RFC3339)})
	return token, nil
}

// SetGroups sets a site's groups (registering the site when new) and
// publishes its configuration again when its layers now render
// differently.
func (h *Hub) SetGroups(ctx context.Context, site string, groups []string) error {
	if !ValidSite(site) {
		return fmt.Errorf("site %q: use 1 to 64 lowercase letters, digits, '_' or '-'", site)
	}
	if err := checkGroups(groups); err != nil {
		return err
	}
	groups = slices.Compact(slices.Sorted(slices.Values(groups)))
	if err := h.updateSite(ctx, site, func(r *SiteRecord) { r.Groups = groups }); err != nil {
		return err
	}
	h.audit(ctx, AuditEntry{Action: "site.groups", Site: site, Detail: strings.Join(groups, ",")})
	_, err := h.republish(ctx, []string{site}, "groups of "+site)
	return err
}

// updateSite applies fn to a site's record with a compare-and-set on its
// revision, retrying when another replica changed it meanwhile.
func (h *Hub) updateSite(ctx context.Context, site string, fn func(*SiteRecord)) error {
	for attempt := 0; attempt < 20; attempt++ {
		var rec SiteRecord
		var rev uint64
		e, err := kvGet(ctx, h.sites, siteKey(site))
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return fmt.Errorf("site %s: record damaged: %w", site, err)
			}
			rev = e.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("site %s: %w", site, err)
		}
		fn(&rec)
		data, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = kvCreate(ctx, h.sites, siteKey(site), data)
		} else {
			_, err = kvUpdate(ctx, h.sites, siteKey(site), data, rev)
		}
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("site %s: %w", site, err)
		}
	}
	return fmt.Errorf("site %s: record changed by others 20 times in a row; try again", site)
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// Site returns a site's record.
func (h *Hub) Site(ctx context.Context, site string) (SiteRecord, error) {
	var rec SiteRecord
	e, err := kvGet(ctx, h.sites, siteKey(site))
	if err != nil {
		return rec, fmt.Errorf("site %s: %w", site, err)
	}
	return rec, json.Unmarshal(e.Value(), &rec)
}

func (h *Hub) onEnroll(m *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req EnrollRequest
	reply, err := h.enrollSite(ctx, m.Data, &req)
	if err != nil {
		reply = EnrollReply{Error: err.Error()}
		h.audit(ctx, AuditEntry{Action: "enroll.refused", Site: req.Site, Detail: err.Error()})
		h.log.Warn("enrolment refused", "site", req.Site, "err", err)
	} else {
		h.audit(ctx, AuditEntry{Action: "enroll", Site: req.Site, Detail: "nkey " + req.SiteNKey})
		h.log.Info("site enrolled", "site", req.Site)
		if _, err := h.republish(ctx, []string{req.Site}, "enrolment of "+req.Site); err != nil {
			h.log.Warn("render at enrolment", "site", req.Site, "err", err)
		}
	}
	data, _ := json.Marshal(reply)
	_ = m.Respond(data)
}

// errToken is the one answer for every token problem (unknown, used,
// expired, for another site) but expiry: telling them apart helps only
// someone guessing.
var errToken = errors.New("enrolment token unknown, already used or for another site")

// parseEnroll decodes and checks an enrolment request (outside input,
// from anyone holding the enrolment creds) without touching NATS.
func parseEnroll(body []byte, req *EnrollRequest) error {
	if len(body) > maxEnrollBody {
		return fmt.Errorf("enrolment request larger than %d bytes", maxEnrollBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return fmt.Errorf("enrolment request: %w", err)
	}
	if dec.More() {
		return errors.New("enrolment request: more than one JSON value")
	}
	if !ValidSite(req.Site) {
		site := req.Site
		if len(site) > 80 {
			site = site[:80] + "…"
		}
		req.Site = "" // not a site: keep it out of the audit's site field
		return fmt.Errorf("site %q: use 1 to 64 lowercase letters, digits, '_' or '-'", site)
	}
	if !nkeys.IsValidPublicUserKey(req.SiteNKey) {
		return errors.New("site_nkey_public: not a NATS user public key (U…)")
	}
	if box, err := base64.StdEncoding.DecodeString(req.SiteBoxPublic); err != nil || len(box) != 32 {
		return errors.New("site_box_public: want 32 bytes in base64")
	}
	if !strings.HasPrefix(req.Token, tokenPrefix) || len(req.Token) != len(tokenPrefix)+64 {
		return errToken
	}
	return nil
}

func (h *Hub) enrollSite(ctx context.Context, body []byte, req *EnrollRequest) (EnrollReply, error) {
	if err := parseEnroll(body, req); err != nil {
		return EnrollReply{}, err
	}
	e, err := kvGet(ctx, h.enroll, tokenKey(req.Token))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return EnrollReply{}, errToken
	}
	if err != nil {
		return EnrollReply{}, fmt.Errorf("enrolment: %w", err)
	}
	var tok tokenRecord
	if err := json.Unmarshal(e.Value(), &tok); err != nil {
		return EnrollReply{}, fmt.Errorf("enrolment: token record damaged: %w", err)
	}
	// Consume it, whatever follows (a token tried for another site has
	// leaked): a delete at the revision read, so of two replicas (or two
	// sites racing with one token) exactly one succeeds.
	if err := kvDelete(ctx, h.enroll, tokenKey(req.Token), e.Revision()); err != nil {
		if isConflict(err) {
			return EnrollReply{}, errToken
		}
		return EnrollReply{}, fmt.Errorf("enrolment: %w", err)
	}
	if tok.Site != req.Site {
		return EnrollReply{}, errToken
	}
	if !h.cfg.Now().Before(tok.Expires) {
		return EnrollReply{}, fmt.Errorf("enrolment token expired at %s; ask for a new one", tok.Expires.Format(time.RFC3339))
	}
	var groups []string
	revoking := false
	if err := h.updateSite(ctx, req.Site, func(r *SiteRecord) {
		revoking = r.SiteNKey != "" && r.SiteNKey != req.SiteNKey
		if revoking {
			r.revoke(h.cfg.Now())
		}
		r.SiteNKey = req.SiteNKey
		r.BoxPublic = req.SiteBoxPublic
		r.EnrolledAt = h.cfg.Now().UTC().Format(time.RFC3339)
		groups = r.Groups
	}); err != nil {
		return EnrollReply{}, err
	}
	if revoking {
		// A re-enrolled site's earlier credentials stop working: a
		// replaced or stolen device keeps none.
		if err := h.applyRevocations(ctx); err != nil {
			return EnrollReply{}, err
		}
	}
	tokJWT, err := h.keys.userJWT("site-"+req.Site, req.SiteNKey, SitePermissions(req.Site))
	if err != nil {
		return EnrollReply{}, fmt.Errorf("enrolment: issue credentials: %w", err)
	}
	genesis, err := genesisKey(h.cfg.DataDir)
	if err != nil {
		return EnrollReply{}, err
	}
	rots, err := h.Rotations(ctx)
	if err != nil {
		return EnrollReply{}, err
	}
	return EnrollReply{JWT: tokJWT, HubKeys: []string{base64.StdEncoding.EncodeToString(genesis)},
		Rotations: rots, Groups: groups}, nil
}

// maxRevoked bounds the revoked keys kept per site (the newest).
const maxRevoked = 16

// revoke moves the record's nkey to its revoked list.
func (r *SiteRecord) revoke(now time.Time) {
	if r.SiteNKey == "" {
		return
	}
	// A JWT's issued-at has a one-second resolution: revoke up to the
	// next second, so one issued this very second is refused too.
	r.Revoked = append(r.Revoked, RevokedKey{NKey: r.SiteNKey, At: now.UTC().Truncate(time.Second).Add(time.Second)})
	if len(r.Revoked) > maxRevoked {
		r.Revoked = r.Revoked[len(r.Revoked)-maxRevoked:]
	}
	r.SiteNKey = ""
}

// RevokeSite revokes a site's credentials now (a stolen or retired
// device): its connections are closed and it must enrol again.
func (h *Hub) RevokeSite(ctx context.Context, site string) error {
	found := false
	if err := h.updateSite(ctx, site, func(r *SiteRecord) {
		found = r.SiteNKey != ""
		r.revoke(h.cfg.Now())
	}); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("site %s: not enrolled, nothing to revoke", site)
	}
	h.audit(ctx, AuditEntry{Action: "site.revoke", Site: site})
	if err := h.applyRevocations(ctx); err != nil {
		return err
	}
	// Every running replica with an embedded server applies it too (the
	// CLI's Dial has no server of its own).
	return h.nc.Publish(subjectApplyRevocations, nil)
}

// subjectApplyRevocations tells every replica (no queue group) to
// re-issue the account with the revoked keys. Only hub users may
// publish it.
const subjectApplyRevocations = "weir.hub.internal.revocations"

func (h *Hub) onApplyRevocations(*nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.applyRevocations(ctx); err != nil {
		h.log.Error("revocations not applied", "err", err)
	}
}

// applyRevocations issues the account JWT with every site's revoked
// keys and gives it to the embedded server, which closes the revoked
// connections; keys/nats-resolver.conf gets it too. An external server
// reads it at its next reload (docs/fleet.md).
func (h *Hub) applyRevocations(ctx context.Context) error {
	h.revokeMu.Lock() // handlers of two subscriptions may both get here
	defer h.revokeMu.Unlock()
	sites, err := h.sitesOf(ctx)
	if err != nil {
		return err
	}
	revoked := map[string]time.Time{}
	for _, s := range sites {
		for _, r := range s.rec.Revoked {
			revoked[r.NKey] = r.At
		}
	}
	tok, claims, err := h.keys.accountClaims(revoked)
	if err != nil {
		return err
	}
	h.keys.accountJWT = tok
	if err := h.keys.writeServerFiles(); err != nil {
		h.log.Warn("revocations: nats-resolver.conf not rewritten", "err", err)
	}
	if h.srv == nil {
		return nil
	}
	if err := h.srv.AccountResolver().Store(h.keys.accountPub, tok); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	acc, err := h.srv.LookupAccount(h.keys.accountPub)
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	h.srv.UpdateAccountClaims(acc, claims)
	return nil
}

// Seal encrypts value to an enrolled site's X25519 key and returns the
// ${sealed:…} reference to write in that site's layer: only the site can
// open it, and the hub keeps no key that could.
func (h *Hub) Seal(ctx context.Context, site string, value []byte) (string, error) {
	rec, err := h.Site(ctx, site)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(rec.BoxPublic)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("site %s: no sealing key (not enrolled yet?)", site)
	}
	var pub [32]byte
	copy(pub[:], raw)
	return bundle.Seal(&pub, value)
}
