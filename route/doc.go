// Package route decides what each sink receives: the controlled data flow
// between the shared processor chain and a sink's buffer.
//
//	sources → shared chain (rules, alarms) → route per sink → buffer → sink
//
// A route selects samples by tag pattern (include, exclude; exclude beats
// include; the same MQTT-style filters as processors' match) and quality,
// then runs the sink's own processor chain (deadband, window, downsample,
// rename, …) so that a cheap or slow destination gets less. The shared
// chain runs once; a route costs only the sink that has one.
//
// Classification is the boundary a route cannot widen: every tag has a
// class (public < internal < confidential < restricted) assigned by
// pattern in the configuration, every sink a highest class it may receive
// (max_class, default internal). A sample above the sink's class never
// enters its buffer, whatever the route includes; the attempt is counted
// and reported as a security event once per sink and tag. The check runs
// on the path the sample has when it leaves the shared chain, before the
// sink's own chain, so a rename in the route cannot launder a tag; and
// the class follows the data there: a path inherits its ancestors' class
// (a window's aggregates keep their tag's), and the rules are carried
// through the shared chain's renames and sibling tags (PathChange).
package route
