package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/weir-edge/weir/security"
)

// Token store errors.
var (
	ErrNoToken     = errors.New("no such token")
	ErrTooMany     = errors.New("too many tokens; revoke some first")
	ErrTokenDenied = errors.New("invalid credentials") // expired, revoked, unknown or wrong: one answer
)

// MaxTokens bounds the store, so the file and the map stay small.
const MaxTokens = 10_000

// pruneAfter is how long an expired or revoked token stays listed.
const pruneAfter = 30 * 24 * time.Hour

// TokensPath is where the tokens of a data dir live.
func TokensPath(dataDir string) string { return filepath.Join(dataDir, "auth", "tokens") }

// TokenStore is the token file DATA_DIR/auth/tokens: JSON, mode 0600 in a
// 0700 directory, replaced atomically on every change, and re-read when
// another process (weir token) changed it, so a token created or revoked
// on the command line takes effect without a restart. Safe for concurrent
// use. Two processes changing it at the same instant may lose one change
// (the later rename wins); creation and revocation are rare, human acts.
type TokenStore struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	byID  map[string]TokenInfo
	stamp fileStamp
	// changed, when set, hears of tokens that appeared or were revoked
	// in the file by another process (weir token on the command line),
	// so those acts reach the audit trail and the SOC stream too.
	changed func(created, revoked []TokenInfo)
}

// OnOutsideChange sets f to be called (under the store's lock: f must not
// call back into the store) with the tokens another process created or
// revoked, noticed when the file is next read.
func (s *TokenStore) OnOutsideChange(f func(created, revoked []TokenInfo)) {
	s.mu.Lock()
	s.changed = f
	s.mu.Unlock()
}

// diffTokens lists the tokens in after that are new, or newly revoked,
// compared with before.
func diffTokens(before, after map[string]TokenInfo) (created, revoked []TokenInfo) {
	for id, t := range after {
		old, known := before[id]
		switch {
		case !known:
			created = append(created, t)
		case old.Revoked == nil && t.Revoked != nil:
			revoked = append(revoked, t)
		}
	}
	slices.SortFunc(created, func(a, b TokenInfo) int { return compareStrings(a.ID, b.ID) })
	slices.SortFunc(revoked, func(a, b TokenInfo) int { return compareStrings(a.ID, b.ID) })
	return created, revoked
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
	ok   bool
}

// OpenTokens opens the token file of dataDir; a missing file is an empty
// store. now is the clock (nil: time.Now).
func OpenTokens(dataDir string, now func() time.Time) (*TokenStore, error) {
	if now == nil {
		now = time.Now
	}
	s := &TokenStore{path: TokensPath(dataDir), now: now, byID: map[string]TokenInfo{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the token file.
func (s *TokenStore) Path() string { return s.path }

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// reloadLocked re-reads the file when it changed since the last read.
func (s *TokenStore) reloadLocked() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.byID, s.stamp = map[string]TokenInfo{}, fileStamp{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if st := stampOf(fi); st == s.stamp {
		return nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	var doc tokenFile
	if len(data) > 0 {
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("token file %s is damaged: %w", s.path, err)
		}
	}
	m := make(map[string]TokenInfo, len(doc.Tokens))
	for _, t := range doc.Tokens {
		if ValidTokenID(t.ID) && len(m) < MaxTokens {
			m[t.ID] = t
		}
	}
	if s.changed != nil {
		if created, revoked := diffTokens(s.byID, m); len(created)+len(revoked) > 0 {
			s.changed(created, revoked)
		}
	}
	s.byID, s.stamp = m, stampOf(fi)
	return nil
}

type tokenFile struct {
	Tokens []TokenInfo `json:"tokens"`
}

// Lookup returns the active token tok. Every failure is ErrTokenDenied
// (or a file error), so a caller cannot tell unknown from expired.
func (s *TokenStore) Lookup(tok string) (TokenInfo, error) {
	id, err := ParseToken(tok)
	if err != nil {
		return TokenInfo{}, ErrTokenDenied
	}
	s.mu.Lock()
	rerr := s.reloadLocked()
	t, ok := s.byID[id]
	s.mu.Unlock()
	if rerr != nil && !ok {
		return TokenInfo{}, rerr
	}
	if !ok || !t.matches(tok) || t.State(s.now()) != "active" {
		return TokenInfo{}, ErrTokenDenied
	}
	return t, nil
}

// Active reports whether the token with this id exists and is neither
// revoked nor expired: a web session opened with a token lives no longer
// than the token.
func (s *TokenStore) Active(id string) bool {
	s.mu.Lock()
	_ = s.reloadLocked() // on a read error, the tokens known so far
	t, ok := s.byID[id]
	s.mu.Unlock()
	return ok && t.State(s.now()) == "active"
}

// Create makes a token for user with role, valid for lifetime, and
// returns it: the only time it is ever seen.
func (s *TokenStore) Create(user string, role security.Role, lifetime time.Duration, note string) (string, TokenInfo, error) {
	if err := ValidUser(user); err != nil {
		return "", TokenInfo{}, err
	}
	if !role.Valid() {
		return "", TokenInfo{}, fmt.Errorf("unknown role %q (want viewer, operator, engineer or admin)", role)
	}
	if lifetime < time.Minute || lifetime > MaxTokenLifetime {
		return "", TokenInfo{}, fmt.Errorf("expiry must be between 1m and %s", MaxTokenLifetime)
	}
	note = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, note)
	if len(note) > 200 {
		note = strings.ToValidUTF8(note[:200], "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return "", TokenInfo{}, err
	}
	s.pruneLocked()
	if len(s.byID) >= MaxTokens {
		return "", TokenInfo{}, ErrTooMany
	}
	tok, info, err := newToken(user, role, s.now(), lifetime, note)
	if err != nil {
		return "", TokenInfo{}, err
	}
	next := maps(s.byID)
	next[info.ID] = info
	if err := s.writeLocked(next); err != nil {
		return "", TokenInfo{}, err
	}
	return tok, info, nil
}

// Revoke marks token id revoked; revoking twice is not an error.
func (s *TokenStore) Revoke(id string) (TokenInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return TokenInfo{}, err
	}
	t, ok := s.byID[id]
	if !ok {
		return TokenInfo{}, ErrNoToken
	}
	if t.Revoked != nil {
		return t, nil
	}
	now := s.now().UTC()
	t.Revoked = &now
	next := maps(s.byID)
	next[id] = t
	if err := s.writeLocked(next); err != nil {
		return TokenInfo{}, err
	}
	return t, nil
}

// RevokeUser revokes every active token of user (the demo's old ones).
func (s *TokenStore) RevokeUser(user string) error {
	for _, t := range s.List() {
		if t.User == user && t.State(s.now()) == "active" {
			if _, err := s.Revoke(t.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// List returns every token, oldest first (hashes included: callers that
// print must drop them).
func (s *TokenStore) List() []TokenInfo {
	s.mu.Lock()
	_ = s.reloadLocked()
	out := make([]TokenInfo, 0, len(s.byID))
	for _, t := range s.byID {
		out = append(out, t)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b TokenInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func maps(m map[string]TokenInfo) map[string]TokenInfo {
	out := make(map[string]TokenInfo, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pruneLocked forgets tokens expired or revoked more than pruneAfter ago.
func (s *TokenStore) pruneLocked() {
	cut := s.now().Add(-pruneAfter)
	for id, t := range s.byID {
		if t.Expires.Before(cut) || (t.Revoked != nil && t.Revoked.Before(cut)) {
			delete(s.byID, id)
		}
	}
}

// writeLocked replaces the file with m atomically (temporary file, fsync,
// rename, fsync of the directory) and adopts m.
func (s *TokenStore) writeLocked(m map[string]TokenInfo) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	doc := tokenFile{Tokens: make([]TokenInfo, 0, len(m))}
	for _, t := range m {
		doc.Tokens = append(doc.Tokens, t)
	}
	slices.SortFunc(doc.Tokens, func(a, b TokenInfo) int { return compareStrings(a.ID, b.ID) })
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*")
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("token file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.byID = m
	if fi, err := os.Stat(s.path); err == nil {
		s.stamp = stampOf(fi)
	}
	return nil
}
