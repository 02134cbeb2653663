// Package opcua is Weir's OPC UA source: one session to one server, with
// subscriptions (monitored items with sampling interval, queue and
// deadband) and polled groups, turned into model.Samples under a tag path
// prefix. It uses github.com/gopcua/opcua as the client stack.
//
// Lifecycle: New validates and plans without I/O. Run discovers the
// server's endpoints, selects the one matching security_policy and
// security_mode, checks the server certificate against the trust list in
// pki_dir (an unknown one is written to rejected/ and the session is
// retried with backoff until an operator moves it to trusted/), opens the
// session and creates every subscription and monitored item in batches.
//
// Any failure — connection lost, server restarted, a subscription gone,
// the watchdog read unanswered — closes the whole session and builds a
// new one after a jittered backoff, recreating every item once. gopcua's
// own reconnect logic is switched off: it gives up when the restarting
// server refuses connections. After a resubscription a server sends every
// item's current value again; a value identical to the last one delivered
// (same source timestamp, status and value) is dropped, so a reconnect
// neither loses nor duplicates samples.
//
// Deadbands are requested from the server and also applied in the client
// with the same formula, so servers that ignore the filter behave like
// those that honour it. Status codes become qualities by their severity
// bits, with the code's name as the reason.
//
// Caveats: gopcua does not surface subscription keep-alives, hence the
// watchdog read of the server clock after watchdog_interval of silence.
// gopcua's variant decoder can panic on some malformed input from a
// server (see README.md).
package opcua
