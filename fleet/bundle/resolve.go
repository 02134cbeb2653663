package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/nacl/box"
	"gopkg.in/yaml.v3"
)

// SiteSecrets resolves a bundle's fleet references on the site.
type SiteSecrets struct {
	// File is the site's secrets file: a YAML block of NAME: value, mode
	// 0600 (refused if group or others may read it). A missing file is
	// not an error: names are then looked up in the environment.
	File string
	// Dir receives one 0600 file per resolved value, which the effective
	// configuration names as {file: …}; created 0700 if missing. It
	// belongs to SiteSecrets: Prune deletes what it does not need there
	// (the secrets file excepted).
	Dir string
	// Lookup reads the environment; nil: os.LookupEnv.
	Lookup func(string) (string, bool)
	// Public and Private are the site's X25519 key pair (NewSiteKey);
	// nil: a ${sealed:…} reference is an error.
	Public, Private *[32]byte
}

// maxSecretsFile bounds the secrets file.
const maxSecretsFile = 1 << 20

// Resolve returns the configuration the gateway parses: config with every
// ${secret:NAME} replaced by {file: Dir/NAME} (its value from the secrets
// file) or {env: NAME} (from the environment), and every ${sealed:…} by
// {file: Dir/sealed-HASH} (its value opened with the site's key). No
// secret value is in the returned bytes. A reference that cannot be
// resolved is an error naming its key path and the reference, never a
// value.
func (s *SiteSecrets) Resolve(cfg []byte) ([]byte, error) {
	if !refPattern.Match(cfg) {
		return cfg, nil // nothing to do: the bytes stay as signed
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(cfg, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: the configuration does not parse: %v", ErrSecret, err)
	}
	var file map[string]string
	loaded := false
	lookup := s.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	err := rewriteRefs(doc.Content[0], func(ref Ref) (*yaml.Node, error) {
		switch ref.Kind {
		case RefSecret:
			if !loaded {
				var err error
				if file, err = readSecretsFile(s.File); err != nil {
					return nil, err
				}
				loaded = true
			}
			if v, ok := file[ref.Name]; ok {
				path, err := s.write(ref.Name, []byte(v))
				if err != nil {
					return nil, err
				}
				return secretRef("file", path), nil
			}
			if _, ok := lookup(ref.Name); ok {
				return secretRef("env", ref.Name), nil
			}
			return nil, fmt.Errorf("%w: ${secret:%s}: not in %s nor in the environment", ErrSecret, ref.Name, orNone(s.File))
		default:
			if s.Private == nil || s.Public == nil {
				return nil, fmt.Errorf("%w: ${sealed:…}: this site has no key to open it", ErrSecret)
			}
			v, ok := box.OpenAnonymous(nil, ref.Sealed, s.Public, s.Private)
			if !ok {
				return nil, fmt.Errorf("%w: ${sealed:…}: does not open with this site's key (sealed to another site?)", ErrSecret)
			}
			sum := sha256.Sum256(ref.Sealed)
			path, err := s.write("sealed-"+hex.EncodeToString(sum[:8]), v)
			if err != nil {
				return nil, err
			}
			return secretRef("file", path), nil
		}
	})
	if err != nil {
		return nil, err
	}
	return encode(doc.Content[0])
}

func orNone(f string) string {
	if f == "" {
		return "(no secrets file)"
	}
	return f
}

// write stores one resolved value as Dir/name, 0600, atomically.
func (s *SiteSecrets) write(name string, v []byte) (string, error) {
	if s.Dir == "" {
		return "", fmt.Errorf("%w: no directory for resolved secrets", ErrSecret)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecret, err)
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecret, err)
	}
	path := filepath.Join(dir, name)
	if err := writeAtomic(path, v, 0o600); err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecret, err)
	}
	return path, nil
}

var secretsFileLine = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// readSecretsFile reads the NAME: value block; a missing file is empty.
func readSecretsFile(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: secrets file: %w", ErrSecret, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: secrets file: %w", ErrSecret, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: secrets file %s is open to other users (mode %#o); chmod 600 it", ErrSecret, path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretsFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: secrets file %s: %w", ErrSecret, path, err)
	}
	if len(data) > maxSecretsFile {
		return nil, fmt.Errorf("%w: secrets file %s is larger than %d KiB", ErrSecret, path, maxSecretsFile>>10)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		// yaml's message may quote the file's text: a value. Say where only.
		return nil, fmt.Errorf("%w: secrets file %s: not a block of NAME: value (%s)", ErrSecret, path, lineOnly(err))
	}
	for k := range m {
		if !secretsFileLine.MatchString(k) {
			return nil, fmt.Errorf("%w: secrets file %s: a name is not letters, digits and _ (not shown)", ErrSecret, path)
		}
	}
	return m, nil
}

// lineOnly keeps "line N" of a yaml error, dropping quoted text.
func lineOnly(err error) string {
	if m := regexp.MustCompile(`line \d+`).FindString(err.Error()); m != "" {
		return m
	}
	return strings.SplitN(err.Error(), ":", 2)[0]
}

// Prune deletes the resolved files in Dir that effective (the
// configuration now running, as Resolve returned it) no longer names, so
// a secret a later version dropped does not stay on disk. Call it once
// the new configuration is running: until then the old one may still
// read its files.
func (s *SiteSecrets) Prune(effective []byte) error {
	if s.Dir == "" {
		return nil
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSecret, err)
	}
	keep := map[string]bool{}
	var doc yaml.Node
	if err := yaml.Unmarshal(effective, &doc); err != nil {
		return fmt.Errorf("%w: prune: the configuration does not parse", ErrSecret)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			if _, v := mapGet(n, "file"); v != nil && v.Kind == yaml.ScalarNode && filepath.Dir(v.Value) == dir {
				keep[filepath.Base(v.Value)] = true
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: prune: %w", ErrSecret, err)
	}
	secretsFile, _ := filepath.Abs(s.File)
	for _, e := range entries {
		if e.Type().IsRegular() && !keep[e.Name()] && filepath.Join(dir, e.Name()) != secretsFile {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("%w: prune: %w", ErrSecret, err)
			}
		}
	}
	return nil
}
