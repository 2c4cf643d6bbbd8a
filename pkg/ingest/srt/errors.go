package srt

import "errors"

var (
	errStreamID = errors.New("malformed streamid")
	errMode     = errors.New("unsupported streamid mode")
	errIdle     = errors.New("no data")
)
