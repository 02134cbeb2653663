package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of every route this package
// mounts, written by hand next to the handlers so that a change to either
// shows in one diff; TestOpenAPIMatchesRoutes keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIPath is where the document is served.
const OpenAPIPath = "/api/v1/openapi.json"

// OpenAPI returns the embedded OpenAPI document (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// serveOpenAPI answers the embedded document. It needs the viewer role
// like every other read under /api/v1 (routeRoles): it is no secret, but
// it names the write and token endpoints, and a caller with no
// credentials has no use for it.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(openAPIDoc)
}
