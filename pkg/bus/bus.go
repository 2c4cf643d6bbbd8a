// Package bus carries live media from the broker to the whep-nodes over NATS
// JetStream: a Publisher writes one publication (an epoch) of a stream,
// its track announcements, frames and catalog entry; Subscribe,
// LatestKeyframe and a Watcher of the catalog read them back. The layout,
// headers, retention and catalog are specified in docs/bus.md, once.
//
// A stream name is validated (ValidateName) before it becomes part of any
// subject, stream or key. Publish never blocks the ingest for longer than
// StallTimeout, and after a loss video resumes only at a keyframe that
// JetStream acknowledged. A Subscription delivers messages in stream order
// (by default from the latest keyframe), frames whole or not at all, and
// resumes after reconnects and broker restarts. It needs NATS server 2.11
// or later with JetStream.
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

// Header names of media messages (docs/bus.md lists them with their values).
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
	// HeaderDerived marks the frames of a derived track (made by a
	// transcoding stage from a source track: docs/transcoding.md).
	HeaderDerived = "Whepcast-Derived"
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
	Cue    string // media.NAME.cue
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
		Cue:    p + "cue",
	}, nil
}
