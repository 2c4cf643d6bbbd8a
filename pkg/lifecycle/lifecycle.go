// Package lifecycle bounds the media streams of a broker over time. An
// Admission admits the publishers of new streams up to a number live at
// once and while the JetStream storage in use is under a budget, and
// refuses the others with a LimitError naming the limit; it never refuses
// the publisher of a stream that is already live. A Reclaimer removes a
// stream that has ended once its retention has run out, with everything it
// holds: the JetStream stream and its messages, the catalog entry, and
// what its owner keeps per stream (OnRemove).
//
// A stream is never removed while the catalog says it is live (on this
// broker or another one) or while its owner says it is live; a stream that
// goes live again between the check and the removal keeps its catalog entry
// (the removal is conditional on the entry's revision) and its publisher
// creates its JetStream stream again. docs/bus.md (Lifecycle, Storage)
// explains the choice of layout, docs/operations.md the flags.
package lifecycle
