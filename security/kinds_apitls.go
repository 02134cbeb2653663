package security

// CertReloadFailed: the HTTP API's certificate or key file changed but the
// new pair could not be loaded; the API keeps serving the previous pair.
const CertReloadFailed Kind = "tls.cert_reload_failed"
