package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-edge/weir/fleet/bundle"
)

// LayerRef names a layer as the CLI writes it: "base", "group:<g>" or
// "site:<s>".
type LayerRef struct {
	Kind bundle.Kind
	Name string
}

// ParseLayerRef reads "base", "group:<g>" or "site:<s>".
func ParseLayerRef(s string) (LayerRef, error) {
	kind, name, _ := strings.Cut(s, ":")
	switch {
	case s == "base":
		return LayerRef{Kind: bundle.KindBase}, nil
	case kind == "group" && ValidSite(name):
		return LayerRef{Kind: bundle.KindGroup, Name: name}, nil
	case kind == "site" && ValidSite(name):
		return LayerRef{Kind: bundle.KindSite, Name: name}, nil
	}
	return LayerRef{}, fmt.Errorf("layer %q: write base, group:<name> or site:<id> (names: lowercase letters, digits, '_', '-')", s)
}

func (r LayerRef) key() string {
	switch r.Kind {
	case bundle.KindBase:
		return "base"
	case bundle.KindGroup:
		return "group." + r.Name
	default:
		return "site." + r.Name
	}
}

func (r LayerRef) String() string {
	switch r.Kind {
	case bundle.KindBase:
		return "base"
	case bundle.KindGroup:
		return "group:" + r.Name
	default:
		return "site:" + r.Name
	}
}

// affects reports whether a site in groups is rendered from the layer.
func (r LayerRef) affects(site string, groups []string) bool {
	switch r.Kind {
	case bundle.KindBase:
		return true
	case bundle.KindGroup:
		return slices.Contains(groups, r.Name)
	default:
		return r.Name == site
	}
}

// PublishResult says what a publish did, site by site.
type PublishResult struct {
	// Versions maps each site given a new bundle to its version.
	Versions map[string]uint64
	// Unchanged lists affected sites whose rendering did not change.
	Unchanged []string
}

// ErrRefused is wrapped by Publish when a layer is refused: one or more
// sites' renderings fail (ties, clear secrets, invalid configuration);
// the error lists every problem, and nothing was stored.
var ErrRefused = errors.New("publish refused")

// maxCASAttempts bounds every compare-and-set loop: past it, others keep
// winning and the caller is told to try again, never left waiting.
const maxCASAttempts = 50

// Publish stores a layer and gives every site it affects a new signed
// bundle (the next version of that site) when its rendering changes. It
// first renders every affected site with the new layer: if any fails,
// nothing is stored and the error (wrapping ErrRefused) lists every
// problem of every site.
func (h *Hub) Publish(ctx context.Context, ref LayerRef, data []byte) (PublishResult, error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		rev := uint64(0)
		if e, err := kvGet(ctx, h.layers, ref.key()); err == nil {
			rev = e.Revision()
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return PublishResult{}, fmt.Errorf("publish %s: %w", ref, err)
		}
		sites, err := h.sitesOf(ctx)
		if err != nil {
			return PublishResult{}, err
		}
		var affected []string
		var problems []error
		for _, s := range sites {
			if !ref.affects(s.id, s.rec.Groups) {
				continue
			}
			affected = append(affected, s.id)
			layers, _, err := h.layersOf(ctx, s.id, s.rec.Groups, &ref, data)
			if err == nil {
				_, err = bundle.Render(s.id, layers)
			}
			if err != nil {
				problems = append(problems, err)
			}
		}
		if ref.Kind == bundle.KindSite && len(affected) == 0 {
			// A site not registered yet: check the layer alone.
			if _, err := bundle.Render(ref.Name, []bundle.Layer{{Kind: bundle.KindSite, Name: ref.Name, Data: data}}); err != nil {
				problems = append(problems, err)
			}
		}
		if len(problems) > 0 {
			err := fmt.Errorf("%w: layer %s:\n%w", ErrRefused, ref, errors.Join(problems...))
			h.audit(ctx, AuditEntry{Action: "publish.refused", Layer: ref.String(), Detail: err.Error()})
			return PublishResult{}, err
		}
		if rev == 0 {
			_, err = kvCreate(ctx, h.layers, ref.key(), data)
		} else {
			_, err = kvUpdate(ctx, h.layers, ref.key(), data, rev)
		}
		if isConflict(err) {
			continue // another replica changed this layer meanwhile: judge again
		}
		if err != nil {
			return PublishResult{}, fmt.Errorf("publish %s: store layer: %w", ref, err)
		}
		h.audit(ctx, AuditEntry{Action: "layer.publish", Layer: ref.String(), Detail: fmt.Sprintf("%d sites affected", len(affected))})
		return h.republish(ctx, affected, "layer "+ref.String())
	}
	return PublishResult{}, fmt.Errorf("publish %s: the layer kept changing under us (%d tries); try again", ref, maxCASAttempts)
}

type siteEntry struct {
	id  string
	rec SiteRecord
}

// sitesOf lists the registered sites.
func (h *Hub) sitesOf(ctx context.Context) ([]siteEntry, error) {
	keys, err := kvKeys(ctx, h.sites)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("sites: %w", err)
	}
	slices.Sort(keys)
	out := make([]siteEntry, 0, len(keys))
	for _, k := range keys {
		e, err := kvGet(ctx, h.sites, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sites: %s: %w", k, err)
		}
		var rec SiteRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return nil, fmt.Errorf("sites: %s: damaged record: %w", k, err)
		}
		out = append(out, siteEntry{id: strings.TrimPrefix(k, "site."), rec: rec})
	}
	return out, nil
}

// layersOf reads a site's layers (with override in place of its stored
// namesake when not nil) and the revision of each key read, which
// republish compares after committing to notice a change in between.
func (h *Hub) layersOf(ctx context.Context, site string, groups []string, override *LayerRef, data []byte) ([]bundle.Layer, []uint64, error) {
	refs := []LayerRef{{Kind: bundle.KindBase}}
	for _, g := range groups {
		refs = append(refs, LayerRef{Kind: bundle.KindGroup, Name: g})
	}
	refs = append(refs, LayerRef{Kind: bundle.KindSite, Name: site})
	var layers []bundle.Layer
	revs := make([]uint64, len(refs))
	for i, r := range refs {
		if override != nil && *override == r {
			layers = append(layers, bundle.Layer{Kind: r.Kind, Name: r.Name, Data: data})
			continue
		}
		e, err := kvGet(ctx, h.layers, r.key())
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: %w", r, err)
		}
		revs[i] = e.Revision()
		if len(e.Value()) > 0 {
			layers = append(layers, bundle.Layer{Kind: r.Kind, Name: r.Name, Data: e.Value()})
		}
	}
	return layers, revs, nil
}

// republish renders each site from the stored layers and, when the
// rendering differs from its newest bundle, signs the next version and
// stores it with a compare-and-set on the bundle's revision: two replicas
// never issue one version twice, and a replica that lost the race renders
// again. After committing it checks that the layers it rendered are still
// current; if another publish changed them in between, it renders again,
// so the newest bundle always reflects the newest layers.
func (h *Hub) republish(ctx context.Context, sites []string, why string) (PublishResult, error) {
	res := PublishResult{Versions: map[string]uint64{}}
	var errs []error
	for _, site := range sites {
		v, changed, err := h.publishSite(ctx, site)
		switch {
		case err != nil:
			errs = append(errs, err)
			h.audit(ctx, AuditEntry{Action: "bundle.refused", Site: site, Detail: why + ": " + err.Error()})
		case changed:
			res.Versions[site] = v
		default:
			res.Unchanged = append(res.Unchanged, site)
		}
	}
	return res, errors.Join(errs...)
}

func (h *Hub) publishSite(ctx context.Context, site string) (version uint64, changed bool, err error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		rec, err := h.Site(ctx, site)
		if errors.Is(err, jetstream.ErrKeyNotFound) && attempt < 10 {
			// On a replicated bucket a read may be answered by a follower
			// that has not yet seen the record just written: wait for it.
			select {
			case <-ctx.Done():
				return 0, false, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return 0, false, err
		}
		layers, revs, err := h.layersOf(ctx, site, rec.Groups, nil, nil)
		if err != nil {
			return 0, false, err
		}
		if len(layers) == 0 {
			return 0, false, nil // nothing published for it yet
		}
		r, err := bundle.Render(site, layers)
		if err != nil {
			return 0, false, err
		}
		cur, curRev, err := h.desiredEntry(ctx, site)
		if err != nil {
			return 0, false, err
		}
		if cur != nil && cur.Hash == r.Hash {
			if h.unchanged(ctx, site, rec.Groups, revs) {
				return cur.Version, changed, nil
			}
			continue
		}
		next := uint64(1)
		if cur != nil {
			next = cur.Version + 1
		}
		signer, err := h.signer(ctx)
		if err != nil {
			return 0, false, err
		}
		b, err := signer.Issue(r, next, h.cfg.Now())
		if err != nil {
			return 0, false, err
		}
		if curRev == 0 {
			_, err = kvCreate(ctx, h.desired, desiredKey(site), b.Encode())
		} else {
			_, err = kvUpdate(ctx, h.desired, desiredKey(site), b.Encode(), curRev)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("site %s: store bundle: %w", site, err)
		}
		changed, version = true, next
		h.audit(ctx, AuditEntry{Action: "bundle.publish", Site: site, Version: next,
			Hash: fmt.Sprintf("%x", r.Hash), Detail: "signed by " + signer.KeyID})
		if h.unchanged(ctx, site, rec.Groups, revs) {
			return version, true, nil
		}
	}
	return 0, false, fmt.Errorf("site %s: its layers kept changing (%d tries); publish again", site, maxCASAttempts)
}

// unchanged reports whether the site's groups and layer revisions are
// still those it was rendered from.
func (h *Hub) unchanged(ctx context.Context, site string, groups []string, revs []uint64) bool {
	rec, err := h.Site(ctx, site)
	if err != nil || !slices.Equal(rec.Groups, groups) {
		return false
	}
	_, now, err := h.layersOf(ctx, site, groups, nil, nil)
	return err == nil && slices.Equal(now, revs)
}

// desiredEntry returns the site's newest bundle and its KV revision (nil
// and 0 when it has none).
func (h *Hub) desiredEntry(ctx context.Context, site string) (*bundle.Bundle, uint64, error) {
	e, err := kvGet(ctx, h.desired, desiredKey(site))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("site %s: desired state: %w", site, err)
	}
	b, err := bundle.Decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("site %s: stored bundle: %w", site, err)
	}
	return b, e.Revision(), nil
}

// Desired returns the site's newest signed bundle (nil when none).
func (h *Hub) Desired(ctx context.Context, site string) (*bundle.Bundle, error) {
	b, _, err := h.desiredEntry(ctx, site)
	return b, err
}

// Versions returns the versions of the site's bundles still in the
// bucket's history (5), oldest first.
func (h *Hub) Versions(ctx context.Context, site string) ([]uint64, error) {
	es, err := h.desired.History(ctx, desiredKey(site))
	if err != nil {
		return nil, fmt.Errorf("site %s: history: %w", site, err)
	}
	var out []uint64
	for _, e := range es {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		b, err := bundle.Decode(e.Value())
		if err != nil {
			return nil, fmt.Errorf("site %s: stored bundle rev %d: %w", site, e.Revision(), err)
		}
		out = append(out, b.Version)
	}
	return out, nil
}

// SiteInfo is one registered site.
type SiteInfo struct {
	ID     string
	Record SiteRecord
}

// Sites lists the registered sites, by id.
func (h *Hub) Sites(ctx context.Context) ([]SiteInfo, error) {
	es, err := h.sitesOf(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SiteInfo, len(es))
	for i, e := range es {
		out[i] = SiteInfo{ID: e.id, Record: e.rec}
	}
	return out, nil
}
