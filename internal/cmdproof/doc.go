// Package cmdproof proves who sent a command over MQTT.
//
// MQTT hands a subscriber a payload and nothing about its publisher, so a
// command that names its own caller ({"user": "alice"}) proves nothing:
// anyone who may publish on the topic is alice. Here every command is
// wrapped in an envelope {caller, cmd, mac}; mac is HMAC-SHA-256 with a
// key only that caller and the gateway hold, over a fixed prefix, the
// kind of command (write, alarm), the caller and the exact bytes of cmd
// (see Envelope). The gateway never re-encodes cmd, so there is no
// canonicalisation to get wrong.
//
// A MAC alone lets a captured command be published again. Fresh refuses a
// command whose issued_at is further than max_age from the clock, and
// remembers each (caller, id) until then, so a replay within max_age is
// refused too. The set is bounded (MaxRemembered); when full of live ids
// new commands are refused, never an id forgotten early.
//
// Refusals are *Refusal values: Error() is the short text a sender may
// see ("refused: bad proof" for an unknown caller and a wrong MAC alike),
// Detail is for the log and the security event. Nothing here ever puts
// a key, or anything derived from one but the MAC, into an error.
package cmdproof
