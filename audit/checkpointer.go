package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

// Options are what OpenWith takes besides the configuration.
type Options struct {
	Log *slog.Logger
	// Events receives a security.AuditCheckpoint event for every
	// checkpoint (Detail: its compact JSON) and security.AuditProblem
	// events. It must not block (security.Recorder). Nil: Discard.
	Events security.Recorder
	// Node names the gateway in checkpoints.
	Node string
	// DataDir keeps the generated signing key when audit.signing_key is
	// not set; empty: the checkpoint file's directory.
	DataDir string
	// Now is the clock of entries and checkpoints (tests); nil: time.Now.
	Now func() time.Time
}

// cpState is the checkpointing part of a Log, guarded by Log.mu.
type cpState struct {
	on       bool
	file     string
	key      ed25519.PrivateKey
	node     string
	every    uint64
	interval time.Duration
	events   security.Recorder

	seq   uint64 // head covered by the last published checkpoint
	taken uint64 // head of the last checkpoint taken (published or not): schedules the next
	// unpublished is set while checkpoints are not published, so the
	// problem is raised once per streak, not at every checkpoint.
	unpublished bool
	prev        *Checkpoint // the checkpoint file's content at Open
	missing     bool        // no checkpoint file at Open

	stats Stats
	// heldReported is the count of held files last reported, so a
	// problem is raised when it grows, not at every rotation.
	heldReported int
}

// Stats counts what checkpointing and rotation did, for metrics.
type Stats struct {
	Checkpoints uint64 // taken (signed, written, offered to the event stream)
	// Unpublished counts checkpoints the event stream did not take.
	Unpublished      uint64
	CheckpointErrors uint64 // the checkpoint file could not be written
	// HeldFiles is how many rotated files are kept beyond max_files
	// because the last published checkpoint does not cover them.
	HeldFiles int
	// Problems counts the AuditProblem events raised.
	Problems uint64
}

// configure loads the signing key and the last checkpoint; no checkpoints
// unless cfg.CheckpointFile is set.
func (c *cpState) configure(cfg Config, o Options, log *slog.Logger) error {
	c.events = o.Events
	if c.events == nil {
		c.events = security.Discard
	}
	if cfg.CheckpointFile == "" {
		return nil
	}
	c.on, c.file, c.node = true, cfg.CheckpointFile, o.Node
	c.every, c.interval = uint64(cfg.CheckpointEvery), cfg.CheckpointInterval
	dir := o.DataDir
	if dir == "" {
		dir = filepath.Dir(cfg.CheckpointFile)
	}
	generated := filepath.Join(dir, GeneratedKeyName)
	key, created, err := LoadSigningKey(cfg.SigningKey, generated)
	if err != nil {
		return err
	}
	c.key = key
	pub := PublicKeyText(key.Public().(ed25519.PublicKey))
	if created {
		log.Warn("audit: generated a checkpoint signing key; give its public key to whoever verifies the trail (weir audit pubkey)",
			"file", generated, "public_key", pub)
	} else {
		log.Info("audit: checkpoints signed", "public_key", pub)
	}
	prev, err := ReadCheckpointFile(cfg.CheckpointFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.missing = true // checkHead tells first start from a deleted file
		return nil
	case err != nil:
		return fmt.Errorf("checkpoint file: %w (move it aside to start a new series of checkpoints)", err)
	}
	if err := prev.Verify(key.Public().(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("checkpoint file %s: %w (replaced, or the signing key changed: move it aside to start a new series)", c.file, err)
	}
	c.prev, c.seq, c.taken = &prev, prev.Seq, prev.Seq
	return nil
}

// checkHead refuses a trail that no longer reaches the last checkpoint:
// entries cut off its end, the file emptied, or (when the checkpointed
// entry is still in the tail ring) rewritten. Writes to OT then stay
// impossible until someone looks, as with a bad newest entry.
func (l *Log) checkHead() error {
	p := l.cp.prev
	if p == nil {
		if l.cp.missing && l.seq > 0 {
			// Someone may have deleted it along with the trail's end; the
			// published checkpoints still tell. Raised, not refused: this
			// is also the first start after checkpoints were configured.
			l.problem(fmt.Sprintf("no checkpoint file %s, but the trail holds %d entries: a new series of checkpoints starts (deleted? compare with the checkpoints IT holds: weir audit verify -checkpoint)", l.cp.file, l.seq))
		}
		return nil
	}
	const hint = "run `weir audit verify`; to go on anyway, move the checkpoint file aside"
	switch {
	case p.Seq > 0 && l.seq == 0:
		return fmt.Errorf("%w: the trail holds no entry, but the checkpoint %s (%s) covers %d: %s",
			ErrEmptyTrail, l.cp.file, p.Time.Format(time.RFC3339), p.Seq, hint)
	case p.Seq > l.seq:
		return fmt.Errorf("%w: the trail ends at seq %d, but the checkpoint %s (%s) covers seq %d: %d entries are missing from its end: %s",
			ErrTruncated, l.seq, l.cp.file, p.Time.Format(time.RFC3339), p.Seq, p.Seq-l.seq, hint)
	}
	for _, line := range l.ringLines() {
		if e, err := ParseLine(line); err == nil && e.Seq == p.Seq && e.Hash != p.Hash {
			return fmt.Errorf("%w: entry seq %d has another hash than the checkpoint %s records: %s", ErrRewritten, p.Seq, l.cp.file, hint)
		}
	}
	return nil
}

// Offerer is a security.Recorder that tells whether it took an event for
// a way out of the box; secevents.Stream implements it. With one, a
// checkpoint counts as published only when it took the event.
type Offerer interface {
	Offer(ctx context.Context, ev security.Event) bool
}

// checkpointLocked takes a checkpoint of the head, writes it to the
// checkpoint file and publishes it. Called with l.mu held (or before the
// Log is shared). A file that cannot be written is a problem, reported,
// but does not stop the trail: the checkpoint is still published.
//
// The checkpoint counts as published (cp.seq, which lets rotation delete
// the files it covers) only when it was written to the checkpoint file
// AND the event stream took it (Offerer; a plain Recorder is trusted).
// Otherwise rotated files it covers are held beyond max_files, with one
// problem per streak.
func (l *Log) checkpointLocked() {
	c := &l.cp
	if !c.on {
		return
	}
	cp := Checkpoint{Node: c.node, Seq: l.seq, Hash: l.last, Time: l.now()}
	cp.Sign(c.key)
	js := cp.JSON()
	written := true
	if err := writeFileAtomic(c.file, append(js, '\n')); err != nil {
		written = false
		c.stats.CheckpointErrors++
		l.problem("checkpoint file not written: " + err.Error())
	}
	ev := security.Event{Time: cp.Time, Kind: security.AuditCheckpoint,
		Severity: security.SeverityInfo, Component: "audit", Object: l.path, Outcome: "ok", Detail: string(js)}
	taken := true
	if o, ok := c.events.(Offerer); ok {
		taken = o.Offer(context.Background(), ev)
	} else {
		c.events.Record(context.Background(), ev)
	}
	c.taken = l.seq
	c.stats.Checkpoints++
	switch {
	case written && taken:
		c.seq, c.unpublished = l.seq, false
	case !taken:
		c.stats.Unpublished++
		if !c.unpublished {
			c.unpublished = true
			l.problem(fmt.Sprintf("checkpoint of seq %d not published: the security event stream did not take it (queue full, security_events.min_severity above info, or no sink and no syslog); rotated files after seq %d are kept beyond max_files until a checkpoint is", l.seq, c.seq))
		}
	}
}

// problem logs and publishes an AuditProblem.
func (l *Log) problem(detail string) {
	l.cp.stats.Problems++
	l.log.Error("audit trail problem", "file", l.path, "problem", detail)
	l.cp.events.Record(context.Background(), security.Event{Time: l.now(), Kind: security.AuditProblem,
		Severity: security.SeverityError, Component: "audit", Object: l.path, Outcome: "failed", Detail: detail})
}

// Stats reports checkpoint and rotation counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cp.stats
}

// Status reports the counters as a pipeline.Status, for /status and the
// metrics (the API adds an "audit" component; HELP lines in api/help.go:
// checkpoints, checkpoint_errors, problems, held_files).
func (l *Log) Status() pipeline.Status {
	s := l.Stats()
	st := pipeline.Status{Name: "trail", State: pipeline.StateRunning,
		Counters: map[string]uint64{"checkpoints": s.Checkpoints, "checkpoint_errors": s.CheckpointErrors, "problems": s.Problems},
		Gauges:   map[string]float64{"held_files": float64(s.HeldFiles)}}
	if err := l.Err(); err != nil {
		st.State, st.LastError = pipeline.StateFailed, err.Error()
	}
	return st
}

var _ pipeline.StatusReporter = (*Log)(nil)

// Run takes a checkpoint every checkpoint_interval when entries were
// added since the last one, until ctx ends; it returns nil then. Without
// checkpoints it just waits.
func (l *Log) Run(ctx context.Context) error {
	if !l.cp.on {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.cp.interval)
	defer t.Stop()
	return l.runTicks(ctx, t.C)
}

func (l *Log) runTicks(ctx context.Context, ticks <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			l.mu.Lock()
			if l.f != nil && l.err == nil && l.seq != l.cp.taken {
				l.checkpointLocked()
			}
			l.mu.Unlock()
		}
	}
}
