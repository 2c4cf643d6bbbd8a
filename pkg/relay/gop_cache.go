package relay

// gopCache holds the video frames of a stream since its latest keyframe: the
// replay a new viewer starts with (Config.Start "gop"). It is guarded by the
// hub's mutex.
//
// A snapshot (frames()) stays valid after the cache moves on: a new GOP gets
// a new slice, and appends to the current one never touch the elements a
// snapshot covers.
type gopCache struct {
	maxFrames int
	maxBytes  int
	gop       []*frame
	bytes     int
	valid     bool // gop starts with a keyframe and is within the limits
	// rate is the bitrate of the last complete GOP, in bytes per 90 kHz
	// tick (0: not known yet).
	rate float64
}

// add appends a video frame: a keyframe starts a new GOP; a GOP that
// exceeds the limits is discarded until the next keyframe.
func (c *gopCache) add(f *frame) {
	if f.key {
		if n := len(c.gop); c.valid && n >= 2 {
			if span := int64(int32(c.gop[n-1].ts - c.gop[0].ts)); span > 0 {
				span += span / int64(n-1) // the last frame's interval
				c.rate = float64(c.bytes) / float64(span)
			}
		}
		c.gop = make([]*frame, 0, max(cap(c.gop), 64))
		c.bytes = 0
		c.valid = true
	}
	if !c.valid {
		return
	}
	c.gop = append(c.gop, f)
	c.bytes += f.bytes
	if len(c.gop) > c.maxFrames || c.bytes > c.maxBytes {
		c.reset()
	}
}

// reset discards the cached GOP.
func (c *gopCache) reset() {
	c.gop, c.bytes, c.valid = nil, 0, false
}

// frames returns the cached GOP, keyframe first, or nil when there is none.
func (c *gopCache) frames() []*frame {
	if !c.valid || len(c.gop) == 0 {
		return nil
	}
	return c.gop[:len(c.gop):len(c.gop)]
}
