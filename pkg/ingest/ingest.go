// Package ingest receives live MPEG-TS and publishes it on the bus: the first
// step of the whepcast data path (TS bytes -> tsframes -> bus).
//
// # Sessions
//
// An ingest session is one publisher of one stream: an HTTP request body
// (PUT or POST /ingest/{stream}, see Handler) or a run of UDP datagrams (see
// UDPListener). The Registry runs every session: it demuxes the bytes with
// tsframes and publishes the announcements and frames with a Publisher opened
// for the session, with a new epoch (later sessions get greater epochs).
//
// Exactly one session per stream is active per Registry. A new session of a
// stream takes over: the active one is stopped (its source is interrupted, so
// an HTTP publisher's connection ends and a UDP source is muted), its
// Publisher is closed (flushed) and only then does the new session open its
// Publisher and publish.
//
// # UDP
//
// A UDPListener feeds the datagrams it receives on one address (each a burst
// of 188-byte TS packets, typically 7: 1316 bytes) to one stream. The first
// datagram starts a session; a silence of UDPConfig.Idle (default 5 s) ends it
// as if the body had ended, and the next datagram starts a new session with a
// new epoch. A UDP session that is taken over (by an HTTP publisher of the
// same stream, say) leaves its listener muted: datagrams are dropped until the
// sender has been silent for Idle, so the two sources do not take the stream
// from each other back and forth. Datagrams arriving faster than the demuxer
// consumes them are dropped once UDPConfig.Queue are waiting.
//
// # Statistics
//
// Every session counts bytes, frames, keyframes, decode errors and publish
// errors; they go to the Publisher (SetIngestStats, every
// Config.StatsInterval and at the end), to the Prometheus metrics (see
// Metrics), and to the Summary returned when the session ends.
package ingest
