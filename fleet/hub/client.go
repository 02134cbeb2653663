package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/fleet/bundle"
)

// The site's side of the contract, for the agent and for tests: these
// helpers only speak the wire layout above.

// RequestEnroll asks the hub to enrol a site over nc (connected with the
// enrolment creds) and returns its reply; a refusal is an error carrying
// the hub's reason.
func RequestEnroll(ctx context.Context, nc *nats.Conn, req EnrollRequest) (EnrollReply, error) {
	body, _ := json.Marshal(req)
	m, err := nc.RequestWithContext(ctx, SubjectEnroll, body)
	if err != nil {
		return EnrollReply{}, fmt.Errorf("enrol %s: %w", req.Site, err)
	}
	var r EnrollReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return EnrollReply{}, fmt.Errorf("enrol %s: reply not JSON: %w", req.Site, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("enrol %s: refused by the hub: %s", req.Site, r.Error)
	}
	return r, nil
}

// TrustFromReply pins the reply's hub keys and applies its rotations in
// order: the trust store a freshly enrolled site starts from.
func TrustFromReply(r EnrollReply, now time.Time) (*bundle.TrustStore, error) {
	var keys []ed25519.PublicKey
	for _, k := range r.HubKeys {
		pub, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("hub key %q: not a base64 ed25519 public key", k)
		}
		keys = append(keys, pub)
	}
	ts, err := bundle.NewTrustStore(keys...)
	if err != nil {
		return nil, err
	}
	if err := ApplyRotations(ts, r.Rotations, now); err != nil {
		return nil, err
	}
	return ts, nil
}

// ApplyRotations applies base64 rotation statements, in order, to ts.
func ApplyRotations(ts *bundle.TrustStore, rotations []string, now time.Time) error {
	for i, s := range rotations {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("rotation %d: not base64", i)
		}
		rot, err := bundle.DecodeRotation(raw)
		if err != nil {
			return fmt.Errorf("rotation %d: %w", i, err)
		}
		if err := ts.Apply(rot, now); err != nil {
			return fmt.Errorf("rotation %d: %w", i, err)
		}
	}
	return nil
}
