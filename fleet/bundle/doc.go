// Package bundle is the desired state of a Weir fleet (issue 15): how a
// site's configuration is composed from layers, versioned, signed by the
// hub, verified and kept on the site. It is a library shared by the hub
// (Render, Signer) and the site agent (Store, SiteSecrets); it does no
// networking.
//
// Layers. A site's configuration is the fleet base, then each of its
// groups, then its own layer, each a partial Weir configuration (the keys
// of config.Config). Render merges them (merge.go says the rules): blocks
// key by key, lists of named items by name (an item replaces its
// namesake whole, or is added; {name: X, remove: true} removes X), other
// lists whole. Precedence is strict: site > group > base. A site's groups
// are peers: two of them setting one key or named item to different
// values is a tie, refused with the key path and both groups, never
// settled by an order nobody wrote down. The result must pass the
// configuration package's own validation; each problem names the layer
// that set the key.
//
// Canonical bytes. The rendering is YAML with keys sorted (`name` first),
// no comments, no styles: the same layers give the same bytes, and the
// hash (SHA-256) changes only when the configuration does.
//
// Bundles. A Bundle is {site, version, hash, config, issued_at, key_id}
// and an ed25519 signature over SignedBytes: a domain-separated
// ("weir-bundle-v1\n"), length-prefixed binary encoding, which is also
// the wire and disk form, so a change to any byte is refused. Versions
// are per site and monotonic: the site applies only a newer one
// (no replay, no rollback by an attacker), and always the newest it is
// given, never those in between.
//
// Trust. A site pins the hub's public keys at enrolment (TrustStore). A
// key is added (with a valid-from time) or retired by a Rotation signed by
// a key the site trusts; retirement is final, and the last active key
// cannot be retired. A bundle signed by an unknown, retired or not yet
// valid key is refused.
//
// Site store. Store.Apply verifies (site, signature, hash, version),
// lets the agent activate the configuration (hot reload), and only then
// keeps the bundle as the last known-good one on disk (atomic write and
// fsync: a crash leaves the old bundle or the new one, whole). OpenStore
// loads it at start, checked again.
//
// Secrets. No secret is in a bundle in clear: a layer writes ${secret:NAME}
// (resolved on the site from its secrets file or environment) or
// ${sealed:…} (Seal: an anonymous nacl box to the site's X25519 key), and
// Render refuses a clear value at a secret key. SiteSecrets.Resolve turns
// references into {file: …}/{env: …} before the gateway parses the
// configuration, so values stay out of the config bytes and out of logs.
//
// Caveats: a Store's directory is trusted like the binary (it holds the
// pinned keys). A key's valid-from is judged on the site's clock: a site
// whose clock lags refuses the new key's bundles until it passes, so the
// hub should date a new key a little before it starts signing with it.
package bundle
