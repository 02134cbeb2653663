package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// decodeJSONBody reads a request body of at most limit bytes as exactly one
// JSON object with no unknown fields into into; shape names the fields for
// the error ("{path, value, reason}"). An empty body is accepted when
// optional. It answers the error itself and returns false when the body
// is refused — one rule for every endpoint that takes a body.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, optional bool, shape string, into any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", nil)
		return false
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil || dec.More() {
		writeError(w, http.StatusBadRequest, "body must be one JSON object "+shape, nil)
		return false
	}
	return true
}
