package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// SelfCheck is the outcome of Log.VerifyChain.
type SelfCheck struct {
	VerifyResult
	// Checkpoint is the signed checkpoint the trail was checked against;
	// nil when checkpoints are off or none was written yet.
	Checkpoint *Checkpoint
	// Notes say what could not be checked (no checkpoint, files rotated
	// away).
	Notes []string
}

// selfVerifyFor bounds how long VerifyChain retries when the trail grew
// or rotated while it was read (at least selfVerifyTries reads). A count
// alone would make the answer depend on the machine's speed: a busy box
// appending and rotating quickly could see every one of a few reads cut
// by a rotation and report a sound trail as broken.
const (
	selfVerifyFor   = 10 * time.Second
	selfVerifyTries = 5
)

// VerifyChain checks the trail this Log writes as `weir audit verify` does
// — every line of every file, chained under the Log's own key — and, when
// the Log takes checkpoints, against its checkpoint file, whose signature
// must verify with the Log's own signing key. It reads the files without
// holding the Log's lock, so appends go on; a failure seen while the trail
// grew (a half-written last line, a rotation in the middle) is retried,
// and one seen while it stood still is reported.
//
// What it cannot see is what the key cannot: someone holding the node's
// files and keys can rewrite both. A copy of the checkpoints kept
// elsewhere (the event stream) is the check for that.
func (l *Log) VerifyChain() (SelfCheck, error) {
	var sc SelfCheck
	var err error
	deadline := time.Now().Add(selfVerifyFor)
	tries := 0
	for ; tries < selfVerifyTries || time.Now().Before(deadline); tries++ {
		l.mu.Lock()
		before, cpOn, cpFile := l.seq, l.cp.on, l.cp.file
		var pub ed25519.PublicKey
		if l.cp.key != nil {
			pub = l.cp.key.Public().(ed25519.PublicKey)
		}
		l.mu.Unlock()
		sc, err = l.verifyOnce(cpOn, cpFile, pub)
		l.mu.Lock()
		after := l.seq
		l.mu.Unlock()
		if err == nil || after == before {
			return sc, err
		}
	}
	// Every try saw the trail move: say so, as the failure may be the
	// reader's, not the trail's.
	return sc, fmt.Errorf("%w (the trail grew while it was read, %d times in %s: ask again)", err, tries, selfVerifyFor)
}

func (l *Log) verifyOnce(cpOn bool, cpFile string, pub ed25519.PublicKey) (SelfCheck, error) {
	var sc SelfCheck
	if !cpOn {
		sc.Notes = append(sc.Notes, "checkpoints are off (audit.checkpoint_file): entries cut off the end of the trail or a rewrite of it cannot be detected")
		r, err := VerifyTrail(l.path, l.h.key)
		sc.VerifyResult = r
		return sc, l.notes(&sc, err)
	}
	// The checkpoint is read before the trail: the trail only grows, so
	// it must reach the checkpoint's seq.
	cp, err := ReadCheckpointFile(cpFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sc.Notes = append(sc.Notes, "no checkpoint written yet")
		r, err := VerifyTrail(l.path, l.h.key)
		sc.VerifyResult = r
		return sc, l.notes(&sc, err)
	case err != nil:
		return sc, fmt.Errorf("checkpoint file: %w", err)
	}
	if pub != nil {
		if err := cp.Verify(pub); err != nil {
			return sc, fmt.Errorf("checkpoint file: %w (not signed by this node's key)", err)
		}
	}
	sc.Checkpoint = &cp
	r, err := VerifyCheckpoint(l.path, l.h.key, cp)
	sc.VerifyResult = r
	return sc, l.notes(&sc, err)
}

func (l *Log) notes(sc *SelfCheck, err error) error {
	if err != nil {
		return err
	}
	if sc.RotatedAway() {
		sc.Notes = append(sc.Notes, fmt.Sprintf("the chain starts at seq %d: older files were rotated away (audit.max_files), so its start is not checked", sc.FirstSeq))
	}
	if sc.CheckpointRotatedAway {
		sc.Notes = append(sc.Notes, "the checkpoint's entry was rotated away, so its hash could not be compared")
	}
	return nil
}
