package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// VerifyError names the first line of a trail that breaks the chain.
type VerifyError struct {
	File string // the file holding the line; "" when it goes without saying
	Line int    // 1-based, within File
	Err  error
}

func (e *VerifyError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s: line %d: %v", e.File, e.Line, e.Err)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyResult describes the part of a trail that verified: all of it when
// VerifyTrail returns no error, the entries before the bad line otherwise.
type VerifyResult struct {
	Files    []string // read, oldest first; the active file last
	Entries  int      // intact entries
	FirstSeq uint64   // of the oldest entry; 0 when there is none
	LastSeq  uint64   // of the newest intact entry
	LastHash string   // of the newest intact entry; Genesis when there is none
	// CheckpointRotatedAway: the checkpoint's seq is older than the oldest
	// entry kept (max_files), so its hash could not be compared; the
	// trail still reaches past it.
	CheckpointRotatedAway bool

	atHash string // hash of the entry at the checkpoint's seq
}

// RotatedAway reports that the chain starts after seq 1: the oldest
// rotated files were deleted (max_files), so its start, the prev_hash of
// the oldest entry kept, cannot be checked against anything.
func (r VerifyResult) RotatedAway() bool { return r.FirstSeq > 1 }

// Verify checks the whole trail at path, chained with plain SHA-256, and
// returns the number of entries. The error, a *VerifyError, names the
// first bad line.
func Verify(path string) (entries int, err error) { return VerifyKey(path, nil) }

// VerifyKey is Verify for a trail chained with HMAC-SHA-256 under key.
func VerifyKey(path string, key []byte) (entries int, err error) {
	r, err := VerifyTrail(path, key)
	return r.Entries, err
}

// VerifyTrail checks the trail whose active file is path, with its rotated
// files, as one chain (key nil for plain SHA-256).
//
// Every line must parse, carry its own correct hash, have the sequence
// number one above the line before (the first one 1) and name the hash of
// the line before as prev_hash (the first one Genesis). So a changed entry
// fails its own hash, a removed one leaves a gap in seq and prev_hash, an
// inserted one a repeated seq, and two swapped ones an out-of-order seq.
// Across files the same holds from the last entry of one file to the first
// of the next, so a removed rotated file or a line removed at the end of
// one leaves a gap; and a rotated file's first entry must have the seq its
// name gives.
//
// The oldest file may start after seq 1 when it is a rotated file: older
// ones were deleted by max_files, and the result says so (RotatedAway).
// Dropping the oldest files, or entries from the start of the oldest one
// together with a rename, is therefore not detected; nor, without a key,
// is a rewrite of every line from a change onwards. Only the key, or a
// copy of the hashes kept elsewhere, defeats those.
//
// A path named like a rotated file (STEM.<20 digits>.EXT) is verified on
// its own, from the seq its name gives.
func VerifyTrail(path string, key []byte) (VerifyResult, error) {
	return verifyTrail(path, key, 0)
}

func verifyTrail(path string, key []byte, at uint64) (VerifyResult, error) {
	c := chain{h: hasher{key: key}, res: VerifyResult{LastHash: Genesis}, at: at}
	files, err := trailFiles(path)
	if err != nil {
		return c.res, err
	}
	for _, tf := range files {
		if err := c.file(tf); err != nil {
			return c.res, err
		}
	}
	return c.res, nil
}

// VerifyCheckpoint is VerifyTrail that also checks the trail against a
// checkpoint of its head (whose signature the caller has checked): the
// chain must reach the checkpoint's seq, and the entry there must have
// the checkpoint's hash. So it finds what the chain alone cannot: entries
// cut off the end (ErrTruncated), an emptied or deleted trail
// (ErrEmptyTrail), and a trail rewritten from the start, every hash
// recomputed (ErrRewritten). A checkpoint older than the oldest entry
// kept is noted in the result (CheckpointRotatedAway), not an error.
func VerifyCheckpoint(path string, key []byte, cp Checkpoint) (VerifyResult, error) {
	when := cp.Time.Format(time.RFC3339)
	res, err := verifyTrail(path, key, cp.Seq)
	if errors.Is(err, fs.ErrNotExist) && cp.Seq > 0 {
		return res, fmt.Errorf("%w: %s does not exist, but the checkpoint of %s covers %d entries (trail deleted?)", ErrEmptyTrail, path, when, cp.Seq)
	}
	if err != nil {
		return res, err
	}
	switch {
	case cp.Seq == 0:
	case res.Entries == 0:
		return res, fmt.Errorf("%w: no entries, but the checkpoint of %s covers %d (trail emptied or replaced?)", ErrEmptyTrail, when, cp.Seq)
	case res.LastSeq < cp.Seq:
		return res, fmt.Errorf("%w: the trail ends at seq %d, but the checkpoint of %s covers seq %d: %d entries cut off its end",
			ErrTruncated, res.LastSeq, when, cp.Seq, cp.Seq-res.LastSeq)
	case cp.Seq < res.FirstSeq:
		res.CheckpointRotatedAway = true
	case res.atHash != cp.Hash:
		return res, fmt.Errorf("%w: entry seq %d has hash %s, but the checkpoint of %s records %s (the trail was rewritten, or is checked with another key)",
			ErrRewritten, cp.Seq, res.atHash, when, cp.Hash)
	}
	return res, nil
}

// trailFiles lists the files of the trail whose active file is path, in
// chain order; the active file has seq 0.
func trailFiles(path string) ([]rotatedFile, error) {
	if seq, ok := asRotated(path); ok {
		return []rotatedFile{{path: path, seq: seq}}, nil
	}
	_, statErr := os.Stat(path)
	files, err := rotatedFiles(path)
	if err != nil && statErr == nil {
		return nil, fmt.Errorf("list rotated files: %w", err)
	}
	switch {
	case statErr == nil:
		files = append(files, rotatedFile{path: path})
	case !errors.Is(statErr, fs.ErrNotExist) || len(files) == 0:
		// No active file is fine only after a crash in the middle of a
		// rotation, with the rotated files there.
		return nil, statErr
	}
	return files, nil
}

// chain carries the check from one line, and one file, to the next.
type chain struct {
	h        hasher
	res      VerifyResult
	prevFile string
	at       uint64 // seq whose hash is kept in res.atHash
}

func (c *chain) file(tf rotatedFile) error {
	f, err := os.Open(tf.path)
	if err != nil {
		return err
	}
	defer f.Close()
	c.res.Files = append(c.res.Files, tf.path)
	br := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		bad := func(err error) error { return &VerifyError{File: tf.path, Line: n, Err: err} }
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = readLong(br, line)
		}
		if err == io.EOF && len(line) == 0 {
			if n == 1 && tf.seq != 0 {
				return bad(errors.New("rotated file is empty (rotation never leaves one empty)"))
			}
			c.prevFile = tf.path
			return nil
		}
		if err == io.EOF {
			return bad(errors.New("incomplete last line (no newline)"))
		}
		if err != nil {
			return bad(err)
		}
		e, err := c.h.check(line[:len(line)-1])
		if err != nil {
			return bad(err)
		}
		if err := c.link(tf, n, e); err != nil {
			return bad(err)
		}
		if c.res.Entries == 0 {
			c.res.FirstSeq = e.Seq
		}
		c.res.Entries++
		c.res.LastSeq, c.res.LastHash = e.Seq, e.Hash
		if e.Seq == c.at {
			c.res.atHash = e.Hash
		}
	}
}

// link checks that e, line n of tf, follows the entry before it.
func (c *chain) link(tf rotatedFile, n int, e Entry) error {
	if n == 1 && tf.seq != 0 && e.Seq != tf.seq {
		return fmt.Errorf("first entry is seq %d, but the file name says %d (entries removed from the start of the file, or the file renamed?)", e.Seq, tf.seq)
	}
	if c.res.Entries == 0 {
		switch {
		case e.Seq == 1 && e.PrevHash != Genesis:
			return errors.New("prev_hash of entry 1 is not Genesis (64 zeros)")
		case e.Seq != 1 && tf.seq == 0:
			// Only a rotated file can start late: older ones rotated away.
			return seqError(e.Seq, 0)
		}
		return nil
	}
	first := n == 1 // of a file after the first one
	switch prev := c.res.LastSeq; {
	case e.Seq == prev+1:
	case first && e.Seq > prev+1:
		return fmt.Errorf("seq %d follows %d, the last entry of the previous file %s (entries removed from its end, or a rotated file removed?)",
			e.Seq, prev, filepath.Base(c.prevFile))
	case first:
		return fmt.Errorf("%w; the previous file %s ends at seq %d", seqError(e.Seq, prev), filepath.Base(c.prevFile), prev)
	default:
		return seqError(e.Seq, prev)
	}
	if e.PrevHash != c.res.LastHash {
		if first {
			return fmt.Errorf("prev_hash does not match the hash of the last entry of the previous file %s (entry changed or replaced?)",
				filepath.Base(c.prevFile))
		}
		return errors.New("prev_hash does not match the hash of the line before (entry removed, inserted or reordered?)")
	}
	return nil
}

func seqError(seq, prev uint64) error {
	switch {
	case prev == 0:
		return fmt.Errorf("seq %d, the first entry must be 1 (entries removed from the start?)", seq)
	case seq > prev+1:
		return fmt.Errorf("seq %d follows %d (entries removed?)", seq, prev)
	case seq == prev:
		return fmt.Errorf("seq %d repeats (entry inserted or duplicated?)", seq)
	}
	return fmt.Errorf("seq %d follows %d (entries reordered or inserted?)", seq, prev)
}

// readLong finishes a line longer than the reader's buffer, up to maxLine.
func readLong(br *bufio.Reader, first []byte) ([]byte, error) {
	line := append([]byte(nil), first...)
	for {
		more, err := br.ReadSlice('\n')
		line = append(line, more...)
		if len(line) > maxLine {
			return nil, errors.New("line longer than 1 MiB")
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}
