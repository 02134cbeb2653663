// Package rename is Weir's namespace re-rooting processor: it replaces a
// leading prefix of a tag path, in whole levels, by another, so that one
// destination can see the plant's "plant/line1/temp" as
// "acme/site1/line1/temp" (or, with an empty `to`, as "line1/temp") while
// the others keep the path as the sources name it. Its main use is in a
// sink's route (`route: processors:`), where it changes only what that
// sink receives.
//
// The prefix matches whole levels only: from "plant/" renames "plant/a"
// and "plant" itself, never "plantX/a". A new path that would break the
// tag path rules (model.ValidatePath: too long, too many levels, empty)
// is not applied: the sample passes unchanged and is counted
// (rename_invalid), and the path is logged once.
//
// Cost: the outcome per original path is cached, so a repeated path costs
// one map lookup and no allocation. The cache holds at most max_tags
// paths; further paths are still renamed, building their string each time
// (counted as rename_uncached).
//
// Caveats: a rename in a route runs after the route's class check, on the
// path the sample had when it left the shared chain, so renaming cannot
// move a tag out of its classification. Two source paths renamed to the
// same new path merge into one tag downstream; the processor does not
// detect that.
package rename
