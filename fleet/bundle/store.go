package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Store is the site's side: the trusted hub keys and the last known-good
// bundle, both on the site's disk, so that a site cut off from the hub
// starts on what it last applied. It is safe for concurrent use; Apply
// and Rotate are serialised.
type Store struct {
	mu      sync.Mutex
	dir     string
	site    string
	now     func() time.Time
	trust   *TrustStore
	current *Bundle
}

// File names in the store's directory.
const (
	knownGoodFile = "known-good.bundle"
	trustFile     = "trust.json"
	tmpMark       = ".tmp-"
)

// StoreOptions tune a Store.
type StoreOptions struct {
	// Now is the site's clock (key valid-from times); nil: time.Now.
	Now func() time.Time
}

// OpenStore opens (creating it 0700 if needed) the store in dir for site.
// pinned holds the keys the site was enrolled with; once the store has
// saved its own trust state (after the first open, and after each
// rotation) that state is used, with any pinned key it lacks added: a key
// retired by a rotation stays retired even if still pinned. The last
// known-good bundle, if any, is checked again (signature, hash, site; its
// key may have been retired since, it was trusted when applied): a
// damaged or foreign one is an error, never run.
func OpenStore(dir, site string, pinned *TrustStore, opts StoreOptions) (*Store, error) {
	if !ValidID(site) {
		return nil, fmt.Errorf("bundle store: site id %q: use 1 to 64 letters, digits, '.', '_' or '-'", site)
	}
	s := &Store{dir: dir, site: site, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bundle store: %w", err)
	}
	removeTemps(dir)
	trust := &TrustStore{keys: map[string]*TrustedKey{}}
	data, err := readBounded(filepath.Join(dir, trustFile), 1<<20)
	switch {
	case err == nil:
		if err := trust.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("bundle store: %s: %w", filepath.Join(dir, trustFile), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("bundle store: %w", err)
	}
	if pinned != nil {
		for _, k := range pinned.Keys() {
			if _, ok := trust.keys[k.ID]; !ok {
				kc := k
				trust.keys[k.ID] = &kc
			}
		}
	}
	if len(trust.keys) == 0 {
		return nil, fmt.Errorf("bundle store: no hub key is pinned: enrol the site with the hub's public key")
	}
	if err := s.saveTrust(trust); err != nil {
		return nil, err
	}
	s.trust = trust
	path := filepath.Join(dir, knownGoodFile)
	data, err = readBounded(path, MaxBundleSize)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle store: %w", err)
	}
	b, err := Decode(data)
	if err == nil {
		err = trust.verify(b, s.now(), true)
	}
	if err == nil && b.Site != site {
		err = fmt.Errorf("%w: it is for site %q", ErrWrongSite, b.Site)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle store: last known-good %s: %w", path, err)
	}
	s.current = b
	return s, nil
}

// Current returns the last known-good bundle (nil before the first).
func (s *Store) Current() *Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Keys returns the trusted keys.
func (s *Store) Keys() []TrustedKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trust.Keys()
}

// Check verifies b as Apply would, without applying it: site, signature
// by a trusted key, hash, and a version newer than the current one.
func (s *Store) Check(b *Bundle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(b)
}

func (s *Store) check(b *Bundle) error {
	if b.Site != s.site {
		return fmt.Errorf("bundle version %d: %w: it is for site %q, this is %q", b.Version, ErrWrongSite, b.Site, s.site)
	}
	if err := s.trust.Verify(b, s.now()); err != nil {
		return err
	}
	if s.current != nil && b.Version == s.current.Version && b.Hash == s.current.Hash {
		return fmt.Errorf("bundle version %d: %w: %w", b.Version, ErrStaleVersion, ErrAlreadyApplied)
	}
	if s.current != nil && b.Version <= s.current.Version {
		return fmt.Errorf("bundle version %d: %w: this site holds version %d", b.Version, ErrStaleVersion, s.current.Version)
	}
	return nil
}

// Apply checks b, calls activate (the site validates the configuration
// and applies it by hot reload; nil: nothing to do) and, only when that
// succeeds, makes b the known-good bundle on disk (atomic write, fsync)
// and in memory. A bundle whose activation fails leaves the known-good
// one in place: the site keeps running it and reports why. The newest
// version always wins: after version 7, version 5 is refused, and 9 is
// applied without 8 ever being seen. activate runs under the store's
// lock, so two versions are never activated at once.
func (s *Store) Apply(b *Bundle, activate func(*Bundle) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(b); err != nil {
		return err
	}
	if activate != nil {
		if err := activate(b); err != nil {
			return fmt.Errorf("bundle version %d: activate: %w", b.Version, err)
		}
	}
	if err := writeAtomic(filepath.Join(s.dir, knownGoodFile), b.Encode(), 0o600); err != nil {
		return fmt.Errorf("bundle version %d: save as known-good: %w", b.Version, err)
	}
	s.current = b
	return nil
}

// Rotate verifies a key rotation statement against the keys trusted now,
// applies it and saves the trust state before it takes effect.
func (s *Store) Rotate(r *Rotation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.trust.clone()
	if err := next.Apply(r, s.now()); err != nil {
		return err
	}
	if err := s.saveTrust(next); err != nil {
		return err
	}
	s.trust = next
	return nil
}

func (s *Store) saveTrust(t *TrustStore) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("bundle store: trust state: %w", err)
	}
	if err := writeAtomic(filepath.Join(s.dir, trustFile), data, 0o600); err != nil {
		return fmt.Errorf("bundle store: save trust state: %w", err)
	}
	return nil
}

func (t *TrustStore) clone() *TrustStore {
	c := &TrustStore{keys: make(map[string]*TrustedKey, len(t.keys))}
	for id, k := range t.keys {
		kc := *k
		c.keys[id] = &kc
	}
	return c
}

// writeAtomic replaces path with data so that a crash at any point
// leaves either the old file or the new one, whole: a temporary file in
// the same directory, written and fsynced, renamed over path, then the
// directory fsynced so the rename itself is durable.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tmpMark+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeTemps deletes what a write interrupted by a crash left behind.
func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), tmpMark) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d KiB", path, max>>10)
	}
	return data, nil
}
