package hub

import (
	"strings"
	"time"

	"github.com/weir-edge/weir/fleet/bundle"
)

// The NATS layout shared with the site agent (/work docs: docs/fleet.md,
// "Subjects and buckets"). Names are lowercase; <site> is a SiteID.
const (
	BucketDesired = "weir_desired" // key site.<site>: bundle.Encode() of the newest bundle
	BucketLayers  = "weir_layers"  // key base, group.<g>, site.<s>: layer YAML
	BucketSites   = "weir_sites"   // key site.<site>: SiteRecord JSON
	BucketEnroll  = "weir_enroll"  // key token.<sha256 hex>: one-time enrolment token
	BucketTrust   = "weir_trust"   // key rotation.<n, 8 digits>: bundle.Rotation encoded

	StreamReports = "WEIR_REPORTS"
	StreamAudit   = "WEIR_HUB_AUDIT"

	SubjectDesiredPrefix = "weir.desired."     // + site: republished puts of weir_desired
	SubjectAskDesired    = "weir.hub.desired." // + site: request, reply the bundle bytes
	SubjectTrust         = "weir.trust"        // rotation statements (bundle.Rotation.Encode), published after each is stored
	SubjectAskTrust      = "weir.hub.trust"    // request, reply TrustReply JSON
	SubjectReportPrefix  = "weir.report."      // + site: site reports (stream WEIR_REPORTS)
	SubjectEnroll        = "weir.enroll"       // request EnrollRequest, reply EnrollReply
	SubjectAudit         = "weir.hubaudit"     // hub audit entries (stream WEIR_HUB_AUDIT)

	// QueueGroup is the queue every hub replica answers requests in.
	QueueGroup = "weir-hub"
	// HeaderStatus is set to StatusNone on a desired-state reply with no bundle.
	HeaderStatus = "Weir-Status"
	StatusNone   = "none"
)

// InboxPrefix is the inbox prefix a site must use (nats.CustomInboxPrefix):
// its credentials may subscribe to nothing else for replies.
func InboxPrefix(site string) string { return "_INBOX_" + site }

// ValidSite reports whether s may name a site or a group at the hub: a
// bundle.ValidID in lowercase without '.', since it is one subject token.
func ValidSite(s string) bool {
	return bundle.ValidID(s) && !strings.Contains(s, ".") && strings.ToLower(s) == s
}

// EnrollRequest is the body of a request on weir.enroll.
type EnrollRequest struct {
	Site  string `json:"site"`
	Token string `json:"token"`
	// SiteNKey is the public nkey (U…) of the site's NATS user; the seed
	// never leaves the site.
	SiteNKey string `json:"site_nkey_public"`
	// SiteBoxPublic is the site's X25519 public key (base64 std), for
	// secrets sealed to it (bundle.Seal).
	SiteBoxPublic string `json:"site_box_public"`
}

// EnrollReply answers an EnrollRequest. Error is set (and nothing else)
// when the enrolment is refused.
type EnrollReply struct {
	Error string `json:"error,omitempty"`
	// JWT is the site's user JWT: with the site's nkey seed it makes the
	// creds file (jwt.FormatUserConfig).
	JWT string `json:"jwt,omitempty"`
	// HubKeys are the ed25519 public keys (base64 std) to pin: the hub's
	// genesis key. Apply Rotations (base64 std of bundle.Rotation.Encode)
	// in order after pinning them to reach today's trusted keys.
	HubKeys   []string `json:"hub_keys,omitempty"`
	Rotations []string `json:"rotations,omitempty"`
	Groups    []string `json:"groups,omitempty"`
}

// TrustReply answers weir.hub.trust: every rotation statement, in order
// (base64 std of bundle.Rotation.Encode).
type TrustReply struct {
	Rotations []string `json:"rotations"`
}

// SiteRecord is a site's entry in weir_sites.
type SiteRecord struct {
	Groups []string `json:"groups"`
	// SiteNKey and BoxPublic are set at enrolment.
	SiteNKey   string `json:"site_nkey,omitempty"`
	BoxPublic  string `json:"box_public,omitempty"`
	EnrolledAt string `json:"enrolled_at,omitempty"`
	// Revoked are the site's earlier nkeys (re-enrolment, weir hub site
	// -revoke): credentials issued for them up to At are refused.
	Revoked []RevokedKey `json:"revoked,omitempty"`
}

// RevokedKey is one revoked site credential.
type RevokedKey struct {
	NKey string    `json:"nkey"`
	At   time.Time `json:"at"`
}

func desiredKey(site string) string { return "site." + site }
func siteKey(site string) string    { return "site." + site }
