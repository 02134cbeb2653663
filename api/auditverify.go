package api

import (
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weir-edge/weir/audit"
)

// AuditVerifier checks the trail's hash chain and checkpoint; *audit.Log
// implements it. VerifyChain may take seconds on a long trail (it reads
// every file); the endpoint runs one at a time.
type AuditVerifier interface {
	VerifyChain() (audit.SelfCheck, error)
}

var _ AuditVerifier = (*audit.Log)(nil)

// AuditVerify serves the chain check of the audit viewer; mount it with
// Options.Extra next to Values:
//
//	GET /api/v1/audit/verify   {ok, entries, first_bad_line, reason, …}
//
// Viewer, like GET /api/v1/audit: it changes nothing, and says no more
// than the entries a viewer can already read (how many are intact, and
// the line where the chain breaks); auditors who may not write are the
// people who check. Its cost — reading the whole trail — is bounded by
// running one verification at a time: a request arriving while one runs
// waits for it and shares its answer.
type AuditVerify struct {
	Trail AuditVerifier
	// Now stamps the answer; default time.Now.
	Now func() time.Time
	Log *slog.Logger

	mu      sync.Mutex
	running *verifyCall
}

// verifyCall is one verification in progress, shared by the requests
// that arrive while it runs.
type verifyCall struct {
	done chan struct{}
	ans  verifyAnswer
}

// Mount registers the endpoint on mux; nothing when Trail is nil.
func (a *AuditVerify) Mount(mux *http.ServeMux) {
	if a.Trail == nil {
		return
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	mux.HandleFunc("GET /api/v1/audit/verify", a.verify)
}

// verifyAnswer is the body of GET /api/v1/audit/verify. File names are
// base names: the server's directory layout is not the viewer's business.
type verifyAnswer struct {
	OK           bool     `json:"ok"`
	Entries      int      `json:"entries"` // intact entries (before the bad line, when not ok)
	Files        int      `json:"files"`
	FirstSeq     uint64   `json:"first_seq"`
	LastSeq      uint64   `json:"last_seq"`
	LastHash     string   `json:"last_hash"`
	FirstBadLine int      `json:"first_bad_line"` // 1-based within bad_file; 0 when ok or not a line's fault
	BadFile      string   `json:"bad_file,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Checkpoint   *cpBrief `json:"checkpoint,omitempty"`
	Notes        []string `json:"notes"`
	CheckedAt    string   `json:"checked_at"`
}

// cpBrief is the checkpoint the trail was checked against.
type cpBrief struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"`
	Node string `json:"node,omitempty"`
}

func (a *AuditVerify) verify(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	c := a.running
	if c == nil {
		c = &verifyCall{done: make(chan struct{})}
		a.running = c
		go a.run(c)
	}
	a.mu.Unlock()
	select {
	case <-c.done:
		writeJSON(w, http.StatusOK, c.ans)
	case <-r.Context().Done():
		// The caller left; the verification finishes for whoever waits.
	}
}

// run verifies once and hands the answer to every waiting request.
func (a *AuditVerify) run(c *verifyCall) {
	defer func() {
		a.mu.Lock()
		a.running = nil
		a.mu.Unlock()
		close(c.done)
	}()
	sc, err := a.Trail.VerifyChain()
	c.ans = answerOf(sc, err, a.Now())
	if err != nil {
		a.Log.Warn("audit verify: the trail does not verify", "err", err)
	}
}

func answerOf(sc audit.SelfCheck, err error, now time.Time) verifyAnswer {
	ans := verifyAnswer{OK: err == nil, Entries: sc.Entries, Files: len(sc.Files), FirstSeq: sc.FirstSeq, LastSeq: sc.LastSeq,
		LastHash: sc.LastHash, Notes: sc.Notes, CheckedAt: now.UTC().Format(time.RFC3339)}
	if ans.Notes == nil {
		ans.Notes = []string{}
	}
	if cp := sc.Checkpoint; cp != nil {
		ans.Checkpoint = &cpBrief{Seq: cp.Seq, Time: cp.Time.UTC().Format(time.RFC3339), Node: cp.Node}
	}
	if err == nil {
		return ans
	}
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		ans.FirstBadLine, ans.BadFile = ve.Line, filepath.Base(ve.File)
		ans.Reason = ve.Err.Error()
	} else {
		ans.Reason = baseNames(err.Error(), sc.Files)
	}
	return ans
}

// baseNames shortens the trail's file paths in msg to their base names.
func baseNames(msg string, files []string) string {
	for _, f := range files {
		msg = strings.ReplaceAll(msg, f, filepath.Base(f))
	}
	return msg
}
