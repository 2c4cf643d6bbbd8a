package rtmp

import (
	"errors"
	"fmt"
)

var errAnalysisBound = fmt.Errorf("more than %d bytes before the tracks were known", MaxAnalysisBytes)

var errPlay = errors.New("playing is not served, only publishing")

// errHostile is a chunk stream that breaks a limit of the chunk guard.
var errHostile = errors.New("rtmp: hostile chunk stream")
