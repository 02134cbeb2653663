// Package api serves Weir's HTTP endpoints. In this version they are the
// observability endpoints:
//
//	GET /metrics  Prometheus exposition of every component's counters and gauges
//	GET /healthz  200 while the process is alive
//	GET /readyz   200 once the engine runs, 503 before and while stopping
//	GET /status   JSON state, last error and counters of every component
//
// Handlers sit behind a Middleware seam so authentication can be added
// without touching them.
package api
