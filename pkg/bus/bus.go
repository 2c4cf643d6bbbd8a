// Package bus is the contract between the broker (which publishes media) and
// the whep-nodes (which play it): how one live media stream is laid out on
// NATS JetStream, and the code that writes it (Publisher) and reads it
// (Subscribe, LatestKeyframe, Watcher). docs/bus.md is the operator's view.
//
// # Names
//
// A stream name matches [A-Za-z0-9_-]{1,64}. ValidateName is applied before a
// name becomes part of any subject, JetStream stream or KV key; everything else
// is rejected with ErrInvalidName and nothing is created.
//
// # Layout
//
// Each media stream NAME has one JetStream stream, "MEDIA_NAME"
// (Subjects.Stream), holding the subjects "media.NAME.>":
//
//	media.NAME.tracks   the track announcement (JSON, see Announcement)
//	media.NAME.v.key    a video access unit that is a keyframe (IDR, with SPS/PPS)
//	media.NAME.v.delta  any other video access unit
//	media.NAME.a        audio: one Opus packet, or the packets of one PES
//	media.NAME.part     continuation parts of a frame larger than the max payload
//
// The stream allows direct gets, rollups and per-message TTLs, discards the
// oldest messages first, and is created or updated by NewPublisher (storage
// cannot change on an existing stream).
//
// A subscriber finds the latest keyframe with one direct get of the last
// message on media.NAME.v.key (LatestKeyframe) and replays from its sequence
// with one consumer on media.NAME.> that delivers in stream order, without
// acks (Subscribe), which also delivers announcements in order. A
// subscription that resumes (reconnect, new consumer) more than StaleBacklog
// behind the stream skips to the latest keyframe stored since, if any.
//
// # Messages
//
// The payload is the raw frame: an Annex-B H.264 access unit, or Opus
// packets. Metadata travels in headers that `nats sub --headers-only` shows as
// plain text:
//
//	Whepcast-Epoch     the ingest session (decimal; see Epoch); on every message
//	Whepcast-Codec     H264 or Opus
//	Whepcast-Pts       presentation time, 90 kHz, unwrapped int64
//	Whepcast-Dts       decode time, 90 kHz, unwrapped int64 (video only)
//	Whepcast-Key       "1" on keyframes (absent otherwise)
//	Whepcast-Dur       duration on the 90 kHz clock (audio only; of all its packets)
//	Whepcast-Sizes     audio carrying several packets: their sizes, "160,158,161"
//	Whepcast-Durs      and their durations, "1800,1800,1800" (90 kHz)
//	Whepcast-Parts     number of messages the frame spans (only when > 1)
//	Whepcast-Part      "i/N" on continuation parts, i from 2 to N
//
// Muxers put several Opus packets in one PES (ffmpeg: five, 100 ms): they
// arrive together, and the Publisher stores them as one message (up to
// MaxAudioGroup packets: the payload is their concatenation, the first at
// Whepcast-Pts, each next one at the previous PTS plus its duration), which
// halves the messages of a typical stream without delaying any packet.
// Subscribe delivers them as separate frames, each with the message's Seq.
//
// A frame larger than the connection's max payload (minus HeaderRoom for the
// headers) is split: the first part goes to its normal subject with
// Whepcast-Parts: N, the N-1 following parts (published back to back, so
// consecutive in the stream) go to media.NAME.part with Whepcast-Epoch and
// Whepcast-Part: i/N. Subscribe reassembles them; an incomplete set (a part
// aged out or was never published) is discarded whole. No frame is dropped
// for its size up to MaxParts parts.
//
// The announcement carries Whepcast-Epoch, Nats-Rollup: sub (only the latest
// is kept) and Nats-TTL: never (it outlives MaxAge). It is published by
// Publisher.Announce at the start of every epoch and whenever the tracks
// change, and again before every keyframe so that byte-based discard cannot
// remove it while the stream is live.
//
// # Publishing
//
// Publisher.Publish never blocks the ingest for longer than StallTimeout: it
// publishes asynchronously within a window of MaxInFlight unacknowledged
// messages; a frame that finds no room in time is dropped, counted and
// reported with ErrDropped, and after a dropped video frame the deltas up to
// the next keyframe are dropped too (they could not be decoded). A frame
// dropped for lack of room means JetStream acknowledged nothing for
// StallTimeout (a stream leader died, say), and so does a publish that finds
// messages in flight and no acknowledgement for StallTimeout (a stream with
// few messages may never fill the window): the messages in flight are then
// abandoned and counted as errors at once, rather than at AckTimeout, so that
// publishing resumes as soon as JetStream does, and the video is broken as
// above. So is it once a video message of the current GOP is known not to be
// acknowledged (an error, a timeout, a lost connection: it may not be
// stored). After such a loss the video resumes at a keyframe that JetStream
// acknowledged (published into a stream without a leader, a keyframe is lost
// while the deltas after it would be stored once a leader is back): the
// first delta after it waits for that acknowledgement. Viewers thus resume
// at a keyframe after a failover.
//
// # Epoch
//
// Every ingest session (a new publisher, a takeover, a broker restart) gets a
// new epoch: by default the session's start time in Unix nanoseconds, so a
// later epoch compares greater. Every message carries it; a change tells a
// subscriber that timestamps restart and that it must resume from the new
// epoch's first keyframe, not that frames were lost. A stream that was
// deleted and created again (its creation time changed) is read by Subscribe
// from its first message.
//
// # Catalog
//
// The KV bucket CatalogBucket ("whepcast_catalog") has one key per stream
// name, whose value is a CatalogEntry (JSON): start time, epoch, tracks,
// state ("live" or "ended") and ingest statistics. Broker and nodes create
// the bucket with the same configuration when it is missing (TTL
// CatalogTTL, one revision per key, expiry markers), so either may start
// first; nodes ask for one replica, the broker for its own count, and an
// existing bucket with fewer replicas is scaled up (OpenCatalog). The Publisher puts the entry live on Announce, refreshes it every
// CatalogRefresh and marks it ended on Close; it never overwrites an entry of
// a later epoch (takeover). Entries that are no longer refreshed (ended
// streams, crashed brokers) expire after CatalogTTL, and the expiry marker
// tells watchers. A Watcher (one per node) keeps the catalog in memory from a
// KV watch and wakes Wait as soon as a stream becomes live.
//
// # Retention
//
// Each media stream keeps messages for MaxAge (default 30 s) and at most
// MaxBytes (default 256 MiB), discarding the oldest: at least two GOPs of a
// 10 s-GOP stream. Storage is file by default, memory as an option.
//
// # Requirements
//
// NATS server 2.11 or later with JetStream (per-message TTLs and KV expiry
// markers); the embedded server (package embedded) is 2.15.
package bus

import (
	"fmt"
	"regexp"
)

// Subject and stream naming.
const (
	// SubjectRoot is the first token of every media subject.
	SubjectRoot = "media"
	// StreamPrefix prefixes the JetStream stream name of a media stream.
	StreamPrefix = "MEDIA_"
	// CatalogBucket is the KV bucket of live streams.
	CatalogBucket = "whepcast_catalog"
)

// Header names carried by every media message.
const (
	HeaderEpoch = "Whepcast-Epoch"
	HeaderCodec = "Whepcast-Codec"
	HeaderPTS   = "Whepcast-Pts"
	HeaderDTS   = "Whepcast-Dts"
	HeaderKey   = "Whepcast-Key"
	HeaderDur   = "Whepcast-Dur"
	HeaderParts = "Whepcast-Parts"
	HeaderPart  = "Whepcast-Part"
	HeaderSizes = "Whepcast-Sizes"
	HeaderDurs  = "Whepcast-Durs"
)

// MaxAudioGroup bounds the audio packets one message carries.
const MaxAudioGroup = 32

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateName reports whether name may be used as a stream name. It returns
// an error wrapping ErrInvalidName otherwise.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q (want 1 to 64 of A-Z a-z 0-9 _ -)", ErrInvalidName, name)
	}
	return nil
}

// Subjects are the NATS subjects of one media stream. Build them with
// SubjectsFor, which validates the name.
type Subjects struct {
	Name   string // the stream name
	Stream string // JetStream stream name
	All    string // media.NAME.>
	Tracks string // media.NAME.tracks
	Key    string // media.NAME.v.key
	Delta  string // media.NAME.v.delta
	Audio  string // media.NAME.a
	Part   string // media.NAME.part
}

// SubjectsFor returns the subjects of the media stream name, or an error
// wrapping ErrInvalidName.
func SubjectsFor(name string) (Subjects, error) {
	if err := ValidateName(name); err != nil {
		return Subjects{}, err
	}
	p := SubjectRoot + "." + name + "."
	return Subjects{
		Name:   name,
		Stream: StreamPrefix + name,
		All:    p + ">",
		Tracks: p + "tracks",
		Key:    p + "v.key",
		Delta:  p + "v.delta",
		Audio:  p + "a",
		Part:   p + "part",
	}, nil
}
