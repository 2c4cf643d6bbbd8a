// Package export serves clips cut out of the media log: GET
// /export/{stream}.ts?from=…&to=… streams the frames stored in that range as
// MPEG-TS, .mp4 as fragmented MP4, starting at the keyframe at or before
// from. It is for whep-nodes and the broker's WHEP listener, and reads the
// bus only (no second storage).
//
// An export writes as it reads: it holds at most the range reader's bounded
// buffer and one fragment, whatever the range's length; a client that reads
// slowly slows its own consumer only, and one that accepts nothing for
// Config.WriteTimeout is dropped. At most Config.MaxExports run at once
// (503 with Retry-After beyond). An export ends at the end of the range, or
// at the first change of epoch (a new publisher or a restart): it never
// mixes two epochs. docs/bus.md says how the log is read.
package export

import (
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxExports   = 8
	DefaultWriteTimeout = 30 * time.Second
	// RetryAfter is the Retry-After of a refusal for too many exports.
	RetryAfter = 5 * time.Second
)

// Config configures the export handler.
type Config struct {
	// MaxExports bounds the exports in progress (0: DefaultMaxExports).
	MaxExports int
	// WriteTimeout drops a client that accepts no bytes for that long
	// (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
}

// Validate reports a negative setting.
func (c Config) Validate() error {
	if c.MaxExports < 0 {
		return fmt.Errorf("%w: max exports %d < 0", ErrInvalidConfig, c.MaxExports)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("%w: write timeout %s < 0", ErrInvalidConfig, c.WriteTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxExports == 0 {
		c.MaxExports = DefaultMaxExports
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}
