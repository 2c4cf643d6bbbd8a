package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Storage types of a media stream.
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// Retention defaults and limits of a media stream.
const (
	DefaultMaxAge = 30 * time.Second
	// DefaultMaxBytes is no byte limit: a byte limit is a reservation that
	// JetStream counts against its store whether or not the bytes are
	// written (docs/bus.md, Storage). A stream is bounded by MaxAge, and
	// the streams of a broker together by its storage budget.
	DefaultMaxBytes = 0
	// MinMaxAge is the shortest retention accepted: JetStream expires
	// messages on a one-second clock.
	MinMaxAge = time.Second
	// MinMaxBytes is the smallest byte limit accepted (0 meaning none).
	MinMaxBytes = 64 << 10
	// MaxReplicas is the largest replica count JetStream supports.
	MaxReplicas = 5
)

// StreamConfig is the retention and placement of a media stream's JetStream
// stream. The zero value means the defaults.
type StreamConfig struct {
	// Storage is StorageFile (default) or StorageMemory.
	Storage string
	// Replicas is the JetStream replica count, 1 to 5 (default 1).
	Replicas int
	// MaxAge is how long messages are kept (default 30 s, at least 1 s).
	// The track announcement is kept beyond it (Nats-TTL: never).
	MaxAge time.Duration
	// MaxBytes, when set, bounds the stream size (at least 64 KiB); the
	// oldest messages are discarded first. JetStream reserves it in its
	// store for as long as the stream exists. 0 (default): no byte limit
	// and no reservation.
	MaxBytes int64
}

// withDefaults returns c with zero fields set to their defaults.
func (c StreamConfig) withDefaults() StreamConfig {
	if c.Storage == "" {
		c.Storage = StorageFile
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	return c
}

// Validate reports the first invalid field of c. Zero fields are valid (they
// take their defaults).
func (c StreamConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Storage != StorageFile && c.Storage != StorageMemory:
		return fmt.Errorf("bus: stream storage %q: want %q or %q", c.Storage, StorageFile, StorageMemory)
	case c.Replicas < 1 || c.Replicas > MaxReplicas:
		return fmt.Errorf("bus: stream replicas %d: want 1 to %d", c.Replicas, MaxReplicas)
	case c.MaxAge < MinMaxAge:
		return fmt.Errorf("bus: stream max age %v: want at least %v", c.MaxAge, MinMaxAge)
	case c.MaxBytes != 0 && c.MaxBytes < MinMaxBytes:
		return fmt.Errorf("bus: stream max bytes %d: want at least %d", c.MaxBytes, MinMaxBytes)
	}
	return nil
}

func (c StreamConfig) storageType() jetstream.StorageType {
	if c.Storage == StorageMemory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// jetStreamConfig is the JetStream stream of media stream s under c (with
// defaults applied).
func (c StreamConfig) jetStreamConfig(s Subjects) jetstream.StreamConfig {
	c = c.withDefaults()
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:              s.Stream,
		Description:       "whepcast media stream " + s.Name,
		Subjects:          []string{s.All},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxBytes:          maxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           c.storageType(),
		Replicas:          c.Replicas,
		AllowDirect:       true,
		AllowRollup:       true,
		AllowMsgTTL:       true,
		DenyDelete:        false,
		DenyPurge:         false,
	}
}
