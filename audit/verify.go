package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// VerifyError names the first line of a trail that breaks the chain.
type VerifyError struct {
	Line int // 1-based
	Err  error
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *VerifyError) Unwrap() error { return e.Err }

// Verify checks the whole trail at path, chained with plain SHA-256, and
// returns the number of entries. The error, a *VerifyError, names the
// first bad line.
func Verify(path string) (entries int, err error) { return VerifyKey(path, nil) }

// VerifyKey is Verify for a trail chained with HMAC-SHA-256 under key.
//
// Every line must parse, carry its own correct hash, have the sequence
// number one above the line before (the first one 1) and name the hash of
// the line before as prev_hash (the first one Genesis). So a changed entry
// fails its own hash, a removed one leaves a gap in seq and prev_hash, an
// inserted one a repeated seq, and two swapped ones an out-of-order seq.
// Without a key, someone who rewrites every line from the change onwards
// can produce a valid chain; only the key (or a copy of the newest hash
// kept elsewhere) defeats that.
func VerifyKey(path string, key []byte) (entries int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return verify(f, hasher{key: key})
}

func verify(r io.Reader, h hasher) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	l := Log{h: h}
	prevHash, prevSeq := Genesis, uint64(0)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = readLong(br, line)
		}
		if err == io.EOF && len(line) == 0 {
			return n - 1, nil
		}
		if err == io.EOF {
			return n - 1, &VerifyError{Line: n, Err: errors.New("incomplete last line (no newline)")}
		}
		if err != nil {
			return n - 1, &VerifyError{Line: n, Err: err}
		}
		line = line[:len(line)-1]
		e, cerr := l.check(line)
		switch {
		case cerr != nil:
			return n - 1, &VerifyError{Line: n, Err: cerr}
		case e.Seq != prevSeq+1:
			return n - 1, &VerifyError{Line: n, Err: seqError(e.Seq, prevSeq)}
		case e.PrevHash != prevHash:
			return n - 1, &VerifyError{Line: n, Err: errors.New("prev_hash does not match the hash of the line before (entry removed, inserted or reordered?)")}
		}
		prevHash, prevSeq = e.Hash, e.Seq
	}
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
