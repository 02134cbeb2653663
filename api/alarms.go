package api

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/security"
)

// AlarmStore is what the alarm endpoints act on; *alarms.Manager
// implements it.
type AlarmStore interface {
	List() []alarms.Alarm
	Get(name string) (alarms.Alarm, bool)
	Acknowledge(name, user, comment string) (alarms.Alarm, error)
	ShelveFor(name, user, reason string, d time.Duration) (alarms.Alarm, error)
	ShelveUntil(name, user, reason string, until time.Time) (alarms.Alarm, error)
	Unshelve(name, user, reason string) (alarms.Alarm, error)
}

var _ AlarmStore = (*alarms.Manager)(nil)

// maxAlarmBody bounds the body of an alarm command.
const maxAlarmBody = 16 << 10

// Alarms serves the alarm endpoints; mount it with Options.Extra next to
// Values:
//
//	GET  /api/v1/alarms[?state=S&priority=P&shelved=true|false]  every alarm, by name
//	GET  /api/v1/alarms/{name}                                    one alarm
//	POST /api/v1/alarms/{name}/ack       {"comment":…}
//	POST /api/v1/alarms/{name}/shelve    {"duration":"30m" | "until":RFC3339, "reason":…}
//	POST /api/v1/alarms/{name}/unshelve  {"reason":…}
//
// Operator actions are recorded as "api:<user>" (the user from the
// authentication middleware). POSTs require Content-Type
// application/json, which a cross-site form cannot send without a CORS
// preflight; the body may be empty for ack and unshelve. Answers: 200 with
// the alarm, 404 unknown alarm, 409 nothing to acknowledge / not shelved,
// 400 bad body or shelve time.
type Alarms struct {
	Store AlarmStore
	// Events receives an AlarmCommand for every ack, shelve and unshelve
	// (done or refused), with the actor and remote address; nil: discard.
	Events security.Recorder
	// Now stamps events; default time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Mount registers the endpoints on mux; nothing when Store is nil.
func (a *Alarms) Mount(mux *http.ServeMux) {
	if a.Store == nil {
		return
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	if a.Events == nil {
		a.Events = security.Discard
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	mux.HandleFunc("GET /api/v1/alarms", a.list)
	mux.HandleFunc("GET /api/v1/alarms/{name}", a.get)
	mux.HandleFunc("POST /api/v1/alarms/{name}/ack", a.ack)
	mux.HandleFunc("POST /api/v1/alarms/{name}/shelve", a.shelve)
	mux.HandleFunc("POST /api/v1/alarms/{name}/unshelve", a.unshelve)
}

func (a *Alarms) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, prio, shelved := q.Get("state"), q.Get("priority"), q.Get("shelved")
	if shelved != "" && shelved != "true" && shelved != "false" {
		writeError(w, http.StatusBadRequest, "shelved must be true or false", nil)
		return
	}
	out := []alarms.Alarm{}
	for _, al := range a.Store.List() {
		if (state != "" && string(al.State) != state) || (prio != "" && string(al.Priority) != prio) ||
			(shelved != "" && al.Shelved != (shelved == "true")) {
			continue
		}
		out = append(out, al)
	}
	writeJSON(w, http.StatusOK, struct {
		Alarms []alarms.Alarm `json:"alarms"`
	}{out})
}

func (a *Alarms) get(w http.ResponseWriter, r *http.Request) {
	al, ok := a.Store.Get(r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, "no such alarm", nil)
		return
	}
	writeJSON(w, http.StatusOK, al)
}

// alarmBody is the request of every alarm command; each uses its fields.
type alarmBody struct {
	Comment  string `json:"comment"`
	Reason   string `json:"reason"`
	Duration string `json:"duration"`
	Until    string `json:"until"`
}

// decode reads an optional JSON body; false when it answered an error.
func decodeAlarmBody(w http.ResponseWriter, r *http.Request, into *alarmBody) bool {
	return decodeJSONBody(w, r, maxAlarmBody, true, "{comment, reason, duration, until}", into)
}

func alarmCaller(r *http.Request) string { return caller(r) }

func (a *Alarms) ack(w http.ResponseWriter, r *http.Request) {
	var b alarmBody
	if !decodeAlarmBody(w, r, &b) {
		return
	}
	al, err := a.Store.Acknowledge(r.PathValue("name"), alarmCaller(r), b.Comment)
	a.record(r, "ack", b.Comment, err)
	a.answer(w, al, err)
}

func (a *Alarms) shelve(w http.ResponseWriter, r *http.Request) {
	var b alarmBody
	if !decodeAlarmBody(w, r, &b) {
		return
	}
	var (
		al  alarms.Alarm
		err error
	)
	switch {
	case (b.Duration == "") == (b.Until == ""):
		writeError(w, http.StatusBadRequest, "set one of duration (e.g. \"30m\") and until (RFC 3339)", nil)
		return
	case b.Duration != "":
		d, perr := time.ParseDuration(b.Duration)
		if perr != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "duration must be a positive Go duration such as 30m", nil)
			return
		}
		al, err = a.Store.ShelveFor(r.PathValue("name"), alarmCaller(r), b.Reason, d)
	default:
		until, perr := time.Parse(time.RFC3339, b.Until)
		if perr != nil {
			writeError(w, http.StatusBadRequest, "until must be an RFC 3339 time", nil)
			return
		}
		al, err = a.Store.ShelveUntil(r.PathValue("name"), alarmCaller(r), b.Reason, until)
	}
	a.record(r, "shelve", b.Reason, err)
	a.answer(w, al, err)
}

func (a *Alarms) unshelve(w http.ResponseWriter, r *http.Request) {
	var b alarmBody
	if !decodeAlarmBody(w, r, &b) {
		return
	}
	al, err := a.Store.Unshelve(r.PathValue("name"), alarmCaller(r), b.Reason)
	a.record(r, "unshelve", b.Reason, err)
	a.answer(w, al, err)
}

// maxEventText caps the free text an operator typed when it goes into an
// event.
const maxEventText = 256

// record reports an alarm command to the SOC stream and audit trail.
func (a *Alarms) record(r *http.Request, verb, text string, err error) {
	outcome, sev, detail := "ok", security.SeverityNotice, verb
	if err != nil {
		outcome, sev, detail = "refused", security.SeverityInfo, verb+" refused: "+err.Error()
	}
	if text != "" {
		if len(text) > maxEventText {
			text = text[:maxEventText] + "…"
		}
		detail += ": " + text
	}
	a.Events.Record(r.Context(), security.Event{Time: a.Now(), Kind: security.AlarmCommand, Severity: sev,
		Actor: caller(r), Remote: r.RemoteAddr, Component: "api", Object: r.PathValue("name"), Outcome: outcome, Detail: detail})
}

func (a *Alarms) answer(w http.ResponseWriter, al alarms.Alarm, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, al)
	case errors.Is(err, alarms.ErrUnknown):
		writeError(w, http.StatusNotFound, "no such alarm", nil)
	case errors.Is(err, alarms.ErrNothingToAck), errors.Is(err, alarms.ErrNotShelved):
		writeError(w, http.StatusConflict, err.Error(), nil)
	case errors.Is(err, alarms.ErrShelveTime):
		writeError(w, http.StatusBadRequest, err.Error(), nil)
	default:
		a.Log.Error("alarm endpoint", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", nil)
	}
}
