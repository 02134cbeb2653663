// Package alarms keeps ISA-18.2 alarm states for alarms raised by rules.
//
// An alarm is normal, unack (active, unacknowledged), acked (active,
// acknowledged) or rtn_unack (returned to normal before anyone
// acknowledged it). Rules raise and clear; operators acknowledge (with who
// and a comment), shelve (until a time, at most max_shelve ahead, with who
// and a reason) and unshelve. A shelved alarm still follows its condition,
// but its events carry annunciate=false; shelving ends by itself at its
// end time (Expire, driven by Stage.Flush on the engine clock).
//
// Every transition is an event: a model.Sample on <prefix>/_alarms/<name>
// whose string value is the JSON of Event. The Manager queues the events
// (bounded; overflow is dropped and counted) and Stage, a processor placed
// right after the rules, appends them to the pipeline (Drain), so they
// reach every sink. Rules only Raise and Clear.
//
// State lives in memory; with a state file it survives restarts (written
// by Run after transitions, off the pipeline). Commands acknowledges
// alarms from an MQTT command topic.
package alarms
