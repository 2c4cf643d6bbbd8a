// Package ingest receives live MPEG-TS and publishes it on the bus: the first
// step of the whepcast data path (TS bytes -> tsframes -> bus).
//
// A publication is one publisher of one stream: an HTTP request body
// (HTTPHandler), a run of UDP datagrams (UDPListener) or a Source of another
// protocol (pkg/ingest/srt, pkg/ingest/rtmp). Publications runs
// them, at most one live publication per stream: each demuxes its bytes with
// tsframes and, from its first access unit on, publishes through its own
// Publisher, opened with an epoch greater than any before. A new publisher
// of a live stream takes it over only then (and only under TakeoverAllow):
// the live publication is stopped and its Publisher closed (flushed) before
// the new one opens its own; a body that is not MPEG-TS never disturbs it.
// Every publication ends with a Summary of what it counted, which the
// Metrics also receive.
package ingest
