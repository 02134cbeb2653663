package bundle

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"golang.org/x/crypto/nacl/box"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/conf"
)

// A secret never travels in a bundle in clear text. Where the gateway's
// configuration takes a secret (a conf.Secret: password, token, the audit
// key …) a layer writes one of:
//
//	password: {env: NAME}            # the site's environment, as on any gateway
//	password: {file: /run/secrets/x} # a file on the site
//	password: ${secret:NAME}         # NAME in the site's secrets file, else its environment
//	password: ${sealed:BASE64}       # sealed on the hub to the site's X25519 key
//
// The last two are fleet references: the whole value, never part of one.
// The site resolves them (SiteSecrets.Resolve) into {file: …} or {env: …}
// before its configuration is parsed, so the gateway reads them as it
// reads any secret, at connect time, and never prints them.

// RefKind says where a reference's value is.
type RefKind int

// Reference kinds.
const (
	RefSecret RefKind = iota + 1 // ${secret:NAME}
	RefSealed                    // ${sealed:BASE64}
)

// Ref is one ${secret:…} or ${sealed:…} reference.
type Ref struct {
	Kind RefKind
	// Name is the secret's name (RefSecret) or the sealed box (RefSealed).
	Name   string
	Sealed []byte
}

// MaxSealed bounds one sealed value (the box, before base64).
const MaxSealed = 64 << 10

var (
	refPattern  = regexp.MustCompile(`\$\{(secret|sealed):([^}]*)\}`)
	secretName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	errPartial  = "a ${secret:…} or ${sealed:…} reference must be the whole value, not part of one"
	sealedLimit = base64.StdEncoding.EncodedLen(MaxSealed)
)

// parseRef parses a scalar: ok false when it holds no reference, an error
// when it holds a malformed one or one inside other text.
func parseRef(s string) (Ref, bool, error) {
	loc := refPattern.FindStringSubmatchIndex(s)
	if loc == nil {
		return Ref{}, false, nil
	}
	if loc[0] != 0 || loc[1] != len(s) {
		return Ref{}, false, fmt.Errorf("%s", errPartial)
	}
	kind, body := s[loc[2]:loc[3]], s[loc[4]:loc[5]]
	if kind == "secret" {
		if !secretName.MatchString(body) {
			return Ref{}, false, fmt.Errorf("${secret:…} takes a name: letters, digits and _, not starting with a digit")
		}
		return Ref{Kind: RefSecret, Name: body}, true, nil
	}
	if len(body) > sealedLimit {
		return Ref{}, false, fmt.Errorf("a sealed value is larger than %d KiB", MaxSealed>>10)
	}
	box, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(box) <= anonymousOverhead {
		return Ref{}, false, fmt.Errorf("${sealed:…} does not hold a sealed value (base64 of a sealed box)")
	}
	return Ref{Kind: RefSealed, Name: body, Sealed: box}, true, nil
}

// anonymousOverhead is what box.SealAnonymous adds to a message.
const anonymousOverhead = box.AnonymousOverhead

// rewriteRefs replaces every scalar holding a reference with what fn
// returns for it; the first malformed reference is an error at its path.
func rewriteRefs(n *yaml.Node, fn func(Ref) (*yaml.Node, error)) error {
	return rewriteAt(n, "", fn)
}

func rewriteAt(n *yaml.Node, path string, fn func(Ref) (*yaml.Node, error)) error {
	for i, c := range n.Content {
		p := path
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 0 {
				continue
			}
			p = join(path, n.Content[i-1].Value)
		case yaml.SequenceNode:
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		if c.Kind != yaml.ScalarNode {
			if err := rewriteAt(c, p, fn); err != nil {
				return err
			}
			continue
		}
		ref, ok, err := parseRef(c.Value)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !ok {
			continue
		}
		nn, err := fn(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		n.Content[i] = nn
	}
	return nil
}

// secretRef is the {env: …} or {file: …} block a reference becomes.
func secretRef(key, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: value},
	}}
}

// standIn is what the hub validates in a reference's place: the shape
// the site will give it, with no value read.
func standIn(ref Ref) *yaml.Node {
	if ref.Kind == RefSecret {
		return secretRef("env", ref.Name)
	}
	return secretRef("file", "/weir/fleet/sealed")
}

// Seal encrypts value to a site's X25519 public key (an anonymous sealed
// box: only the site's private key opens it; the hub keeps no key for it)
// and returns the ${sealed:…} reference to write in a layer.
func Seal(sitePublic *[32]byte, value []byte) (string, error) {
	if len(value) > MaxSealed-anonymousOverhead {
		return "", fmt.Errorf("%w: a sealed value is at most %d bytes", ErrSecret, MaxSealed-anonymousOverhead)
	}
	out, err := box.SealAnonymous(nil, value, sitePublic, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("%w: seal: %w", ErrSecret, err)
	}
	return "${sealed:" + base64.StdEncoding.EncodeToString(out) + "}", nil
}

// NewSiteKey returns a new X25519 key pair for a site's sealed secrets.
func NewSiteKey() (public, private *[32]byte, err error) {
	return box.GenerateKey(rand.Reader)
}

// secretKeys are key names that hold a secret wherever they appear, also
// where the configuration's types do not say so (an unknown key, a block
// the gateway decodes later): a clear value there is refused too.
var secretKeys = map[string]bool{"password": true, "passphrase": true, "token": true, "secret": true,
	"private_key": true, "api_key": true, "signing_key": true, "client_secret": true, "secret_key": true}

var secretType = reflect.TypeOf(conf.Secret{})

// clearSecrets returns a Problem for every clear-text value a layer holds
// where a secret belongs: at a key of type conf.Secret (found by following
// the yaml keys through config.Config's types), or at a key named like a
// secret. What is written is never shown.
func clearSecrets(layer string, root *yaml.Node) []Problem {
	if root == nil {
		return nil
	}
	var out []Problem
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		if t != nil {
			t = derefType(t)
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				p := join(path, k)
				ft := fieldType(t, k)
				secret := derefOrNil(ft) == secretType || secretKeys[strings.ToLower(k)]
				if secret && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" && v.Value != "" {
					// A malformed reference is not clear text: validation
					// reports it, as it reports one anywhere else.
					if _, ok, err := parseRef(v.Value); !ok && err == nil {
						out = append(out, Problem{Key: p, Layer: layer, Msg: "a secret is written in clear text (not shown here); " +
							"write ${secret:NAME} (resolved on the site), ${sealed:…} (weir hub seal), or {env: NAME} / {file: PATH}"})
					}
					continue
				}
				walk(v, ft, p)
			}
		case yaml.SequenceNode:
			var et reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				et = t.Elem()
			}
			for i, c := range n.Content {
				walk(c, et, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, reflect.TypeOf(config.Config{}), "")
	return out
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func derefOrNil(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	return derefType(t)
}

// fieldType is the Go type under yaml key in struct (inline fields
// included) or string-keyed map t; nil when unknown.
func fieldType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	t = derefType(t)
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
	default:
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if ft := fieldType(sf.Type, key); ft != nil {
				return ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if name == key {
			return sf.Type
		}
	}
	return nil
}
