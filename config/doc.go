// Package config is Weir's configuration: one YAML file, decoded strictly
// (an unknown key is an error), validated without I/O, and reported with
// file:line and the key path in every message.
//
// The typed Config is the factory: each source or sink entry is a typed
// union with exactly one protocol block set, and the component's own Config
// type is decoded in place, so the whole file is checked against Go types in
// one pass.
//
// Each component kind (modbus, opcua, scale, mqtt, historian …) is one row
// in kinds.go: its key, where its block sits, its Validate and its
// constructor. Validate, Build, the build-by-name functions for hot reload
// (BuildSource, BuildSink, BuildSinkDeferred, BuildProcessors) and the
// messages read those tables, so a new connector is its package, its
// block field and one line.
//
// Compare computes the Diff hot reload acts on (diff.go): named sources and
// sinks added, removed or changed, whether the processing chain changed,
// which keys apply live and which need a restart.
//
// Every problem in a file is reported at once: the decoder's (unknown keys,
// with the key probably meant; values of the wrong kind, said in YAML's
// words, never Go's) together with Validate's, except those that only
// repeat a decode error. Inspect adds the checks that read what the file
// names on this machine (Check: secrets, TLS files); with Options.Offline
// it checks a file written for another machine as written.
//
// A file is hostile input (configuration may come from a hub): limits.go
// bounds its size, the values it expands to through aliases, its nesting,
// and the length of its lists and blocks, all checked on the parsed tree
// before the key index or the decoder follows an alias, so that any file
// costs at most ~100 MB and a second to refuse.
//
// ${NAME} and ${NAME:-default} are expanded from the environment before
// parsing, line by line, as Telegraf does; "$$" is a literal "$". Secrets
// should not use expansion but a secret reference ({env: NAME} or
// {file: PATH}), which is read only when the component connects and never
// printed.
package config
