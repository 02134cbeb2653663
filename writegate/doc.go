// Package writegate is the one way Weir writes to OT. Every writer — the
// HTTP API, rules, MQTT and Sparkplug commands — calls Gate.Write; the
// sources' write paths (sources/modbus, sources/opcua) are reachable only
// through it.
//
// A write is denied unless a policy allows it (IEC 62443 CR 2.1, 3.5,
// 3.6, 7.1). The checks run in a fixed order, and a refusal names the one
// that failed:
//
//  0. the caller's own token bucket (write_limits.per_caller, spent by
//     every attempt) has a token, so one caller's flood cannot use up a
//     tag's budget for everyone — "per-caller rate limit 30/min exceeded";
//     further refusals within a minute are audited as one summary
//  1. a policy matches the tag (first match in list order decides; an
//     allow: false policy refuses) — "no policy allows writes to <path>"
//  2. the caller matches one of its caller globs — "caller rule:x not
//     allowed" — and its role includes one of the policy's roles — "role
//     viewer of caller api:bob not allowed (…needs operator)"
//  3. the command is not older than max_age by the gate's clock (no replay
//     of commands buffered across an outage) — "command issued 12s ago,
//     older than max_age 5s"
//  4. the value has the policy's type and lies in min..max — "value 700
//     outside 60..600"
//  5. the caller's share of the tag's budget (half of max_rate, per
//     caller and tag) has a token, so one caller under its own limit
//     still cannot spend a tag's whole budget — "per-caller share 5/min
//     of the tag's max_rate 10/min (write_policies[0]) exceeded"; audited
//     like the per-caller refusals
//  6. the tag's token bucket has a token — "rate limit 10/min exceeded"
//
// and only then the source writes the device and reads the value back.
// A refused write never reaches the source. Every attempt, allowed, denied
// or failed, is appended to the audit trail (package audit) before Write
// returns; while the trail cannot record, nothing is written.
//
// # Caveats
//
// Writes to one tag from several callers are serialised by the source per
// device, not ordered by the gate. Rate buckets (per tag and per caller)
// and per (caller, tag) live in memory, so a
// restart refills them. A min/max of a policy applies in engineering units
// (after the source's scale and offset).
package writegate
