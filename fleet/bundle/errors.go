package bundle

import "errors"

// Sentinel errors that steer control flow: the site agent reports them to
// the hub by name (errors.Is), so they live in one place. Every error
// returned wraps one of them with the "where" (layer, key path, key id).
var (
	// ErrLayer: a layer is not a usable YAML document (syntax, anchors,
	// tags, size or nesting past the limits, duplicate names in a list).
	ErrLayer = errors.New("bad layer")
	// ErrTie: two of a site's groups set the same key or named item to
	// different values; precedence between peers is never guessed.
	ErrTie = errors.New("tie between groups")
	// ErrClearSecret: a layer holds a secret in clear text.
	ErrClearSecret = errors.New("secret in clear text")
	// ErrInvalidConfig: the rendered configuration does not pass the
	// configuration package's validation.
	ErrInvalidConfig = errors.New("rendered configuration is invalid")

	// ErrMalformed: a bundle or rotation statement does not decode
	// (outside input: size, syntax, field shapes).
	ErrMalformed = errors.New("malformed")
	// ErrUnknownKey: signed by a key id the trust store does not hold.
	ErrUnknownKey = errors.New("signed by an unknown key")
	// ErrRetiredKey: signed by a key that has been retired.
	ErrRetiredKey = errors.New("signed by a retired key")
	// ErrKeyNotYetValid: signed by a key before its valid-from time.
	ErrKeyNotYetValid = errors.New("signed by a key not yet valid")
	// ErrBadSignature: the signature does not match the signed bytes.
	ErrBadSignature = errors.New("bad signature")
	// ErrHashMismatch: the configuration bytes do not hash to the hash
	// the bundle carries.
	ErrHashMismatch = errors.New("configuration hash mismatch")
	// ErrWrongSite: the bundle is addressed to another site.
	ErrWrongSite = errors.New("bundle for another site")
	// ErrStaleVersion: the bundle's version is not newer than the one the
	// site holds (a replay, or a rollback attempt).
	ErrStaleVersion = errors.New("version not newer than the current one")
	// ErrAlreadyApplied: the bundle is the one the site holds (same
	// version and hash), as when the hub sends it again after a
	// reconnect: harmless, and refused like any replay (it also wraps
	// ErrStaleVersion), so the agent may ignore it.
	ErrAlreadyApplied = errors.New("already applied")
	// ErrRotation: a key rotation statement cannot be applied (it would
	// retire the last key, re-add a retired one, …).
	ErrRotation = errors.New("key rotation refused")
	// ErrSecret: a secret reference cannot be resolved on the site.
	ErrSecret = errors.New("secret reference")
)
