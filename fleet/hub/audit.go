package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AuditEntry is one line of the hub's audit trail: every publish (and
// refused publish), enrolment (and refusal), token, group change and key
// rotation. The trail is the stream WEIR_HUB_AUDIT, shared by replicas;
// each entry carries the SHA-256 of the one before (genesis: 64 zeros)
// and of itself, so a changed, removed or reordered entry breaks the chain
// (VerifyAudit). Replicas append with an expected last sequence, so the
// chain never forks.
type AuditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Replica  string    `json:"replica"`
	Action   string    `json:"action"`
	Site     string    `json:"site,omitempty"`
	Layer    string    `json:"layer,omitempty"`
	Version  uint64    `json:"version,omitempty"`
	Hash     string    `json:"config_hash,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	PrevHash string    `json:"prev_hash"`
	SelfHash string    `json:"hash"`
}

const auditGenesis = "0000000000000000000000000000000000000000000000000000000000000000"

func (e AuditEntry) digest() string {
	e.SelfHash = ""
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// audit appends e; a failure is logged at error level (the action it
// records has happened: refusing it afterwards would not undo it).
func (h *Hub) audit(ctx context.Context, e AuditEntry) {
	if err := h.appendAudit(ctx, e); err != nil {
		h.log.Error("hub audit: entry not written", "action", e.Action, "site", e.Site, "err", err)
	}
}

func (h *Hub) appendAudit(ctx context.Context, e AuditEntry) error {
	e.Time = h.cfg.Now().UTC()
	e.Replica = h.cfg.Replica
	for attempt := 0; attempt < 50; attempt++ {
		prev, last := auditGenesis, uint64(0)
		m, err := retry(ctx, func(c context.Context) (*jetstream.RawStreamMsg, error) {
			return h.auditStream.GetLastMsgForSubject(c, SubjectAudit)
		})
		switch {
		case err == nil:
			var p AuditEntry
			if err := json.Unmarshal(m.Data, &p); err != nil {
				return fmt.Errorf("last entry %d unreadable: %w", m.Sequence, err)
			}
			prev, last = p.SelfHash, m.Sequence
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			return err
		}
		e.Seq = last + 1
		e.PrevHash = prev
		e.SelfHash = e.digest()
		data, _ := json.Marshal(e)
		_, err = retry(ctx, func(c context.Context) (*jetstream.PubAck, error) {
			return h.js.Publish(c, SubjectAudit, data, jetstream.WithExpectLastSequence(last))
		})
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return err
		}
	}
	return errors.New("another replica kept appending; gave up after 50 tries")
}

// ReadAudit returns the trail from sequence from (1: all), at most max
// entries, checking the chain as it goes: it fails at the first entry
// whose hash or link is wrong, naming it.
func (h *Hub) ReadAudit(ctx context.Context, from uint64, max int) ([]AuditEntry, error) {
	info, err := h.auditStream.Info(ctx)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	var out []AuditEntry
	prev := ""
	for seq := from; seq <= info.State.LastSeq && len(out) < max; seq++ {
		m, err := h.auditStream.GetMsg(ctx, seq)
		if err != nil {
			return out, fmt.Errorf("hub audit entry %d: %w", seq, err)
		}
		var e AuditEntry
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return out, fmt.Errorf("hub audit entry %d: unreadable: %w", seq, err)
		}
		if e.Seq != seq || e.digest() != e.SelfHash {
			return out, fmt.Errorf("hub audit entry %d: hash does not match its content (changed)", seq)
		}
		if (seq == 1 && e.PrevHash != auditGenesis) || (prev != "" && e.PrevHash != prev) {
			return out, fmt.Errorf("hub audit entry %d: does not follow entry %d (removed or reordered)", seq, seq-1)
		}
		prev = e.SelfHash
		out = append(out, e)
	}
	return out, nil
}
