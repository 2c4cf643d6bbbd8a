package demo

import "errors"

// ErrEmptySample is returned by Loop for a clip without any H.264 or Opus
// frame.
var ErrEmptySample = errors.New("demo: the clip has no H.264 or Opus frame")
