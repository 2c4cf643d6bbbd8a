package rtmp

import (
	"encoding/base64"
	"math"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	rtmpmsg "github.com/bluenviron/gortmplib/pkg/message"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// SCTE-35 in RTMP: encoders (Wowza, AWS Elemental, OBS plugins) send splice
// cues as AMF0 data messages, onCuePoint (or onAdCue) with an object of
// name, time (seconds of the stream), type and parameters; the parameters
// carry the splice_info_section in base64 when the source had one, and
// otherwise only say cue-out (with a duration) or cue-in. gortmplib's Reader
// drops data messages after the tracks are known, so cuePoints looks at
// them on their way to it.

const (
	// maxCueStrings bounds the strings of a cue point looked at for a
	// base64 section, maxCueDepth the nesting looked into.
	maxCueStrings = 64
	maxCueDepth   = 4
)

// cuePoints turns a publisher's SCTE-35 cue points into cues for h (when
// it takes cues: tsframes.CueSink), on the timeline of its frames. It is
// also the Sink the frames go through, to know the latest PTS (that of an
// immediate cue). Used by the goroutine that reads the connection.
type cuePoints struct {
	tsframes.Sink
	last    int64
	hasLast bool
}

func (c *cuePoints) Frame(f tsframes.Frame) error {
	c.last, c.hasLast = f.PTS, true
	return c.Sink.Frame(f)
}

// conn returns conn with its AMF0 data messages looked at for cue points
// before gortmplib's Reader gets them.
func (c *cuePoints) conn(conn gortmplib.Conn) gortmplib.Conn { return cueConn{Conn: conn, c: c} }

type cueConn struct {
	gortmplib.Conn
	c *cuePoints
}

func (cc cueConn) Read() (rtmpmsg.Message, error) {
	msg, err := cc.Conn.Read()
	if d, ok := msg.(*rtmpmsg.DataAMF0); ok {
		cc.c.data(d.Payload)
	}
	return msg, err
}

// data handles one AMF0 data message: a cue point with SCTE-35 content
// becomes a cue, anything else is ignored. A cue the Sink fails to take
// is dropped (a failing publication ends at its next frame).
func (c *cuePoints) data(payload amf0.Data) {
	cs, ok := c.Sink.(tsframes.CueSink)
	if !ok || len(payload) < 2 {
		return
	}
	if name, _ := payload[0].(string); name != "onCuePoint" && name != "onAdCue" && name != "onCueOut" && name != "onCueIn" {
		return
	}
	cue, ok := c.cueOf(payload[0].(string), objectOf(payload[1]))
	if !ok {
		return
	}
	_ = cs.Cue(cue)
}

// cueOf reads a cue point: its SCTE-35 section when it carries one (any
// string of it that is a valid splice_info_section in base64), else a
// splice_insert made from what it says (cue-out with its duration, or
// cue-in). The cue applies at the cue point's time, else at the latest
// frame's PTS; false when it is no SCTE-35 cue point or there is no
// timeline yet.
func (c *cuePoints) cueOf(kind string, obj amf0.Object) (tsframes.Cue, bool) {
	var pts int64
	switch t, ok := obj.GetFloat64("time"); {
	case ok && t >= 0 && t < math.MaxInt32:
		pts = ticks90k(time.Duration(t * float64(time.Second)))
	case c.hasLast:
		pts = c.last
	default:
		return tsframes.Cue{}, false
	}
	if sec, ok := findSection(obj, 0, new(int)); ok {
		// The section's times are the encoder's MPEG-TS clock: put it on
		// the frames' timeline, where the cue point is.
		sec = tsframes.RetimeSpliceInfo(sec, pts)
		si, err := tsframes.ParseSpliceInfo(sec)
		if err != nil {
			return tsframes.Cue{}, false
		}
		return tsframes.Cue{PTS: pts, SpliceInfo: si, Section: sec}, true
	}
	// No section: what the cue point says, in a splice_insert.
	words := strings.ToLower(kind)
	for _, k := range []string{"name", "type"} {
		if s, ok := obj.GetString(k); ok {
			words += " " + strings.ToLower(s)
		}
	}
	params := objectOf(get(obj, "parameters"))
	si := tsframes.SpliceInfo{Command: tsframes.SpliceInsert, Timed: true, SpliceTime: pts & (1<<33 - 1)}
	switch {
	case strings.Contains(words, "cueout") || strings.Contains(words, "cue-out") || strings.Contains(words, "cue_out") ||
		strings.Contains(words, "splice_out") || strings.Contains(words, "adstart"):
		si.OutOfNetwork = true
		if d, ok := params.GetFloat64("duration"); ok && d > 0 && d < 86400 {
			si.Duration, si.AutoReturn = int64(d*90000), true
		}
	case strings.Contains(words, "cuein") || strings.Contains(words, "cue-in") || strings.Contains(words, "cue_in") ||
		strings.Contains(words, "splice_in") || strings.Contains(words, "adend"):
	default:
		return tsframes.Cue{}, false
	}
	if id, ok := params.GetFloat64("id"); ok && id >= 0 && id <= math.MaxUint32 {
		si.EventID = uint32(id)
	}
	sec := tsframes.AppendSpliceInfo(nil, si)
	return tsframes.Cue{PTS: pts, SpliceInfo: si, Section: sec}, true
}

// findSection looks for a base64 splice_info_section among the strings of
// v, at most maxCueDepth deep and maxCueStrings strings in all (seen).
func findSection(v any, depth int, seen *int) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		if *seen++; *seen > maxCueStrings || len(x) < 24 || len(x) > 8192 {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil || len(b) == 0 || b[0] != 0xFC {
			return nil, false
		}
		si, err := tsframes.ParseSpliceInfo(b)
		if err != nil || (si.Command != tsframes.SpliceInsert && si.Command != tsframes.TimeSignal) {
			return nil, false
		}
		return b, true
	case amf0.Object, amf0.ECMAArray, amf0.StrictArray:
		if depth >= maxCueDepth {
			return nil, false
		}
		var items []any
		switch o := x.(type) {
		case amf0.Object:
			for _, e := range o {
				items = append(items, e.Value)
			}
		case amf0.ECMAArray:
			for _, e := range o {
				items = append(items, e.Value)
			}
		case amf0.StrictArray:
			items = o
		}
		for _, it := range items {
			if b, ok := findSection(it, depth+1, seen); ok {
				return b, true
			}
		}
	}
	return nil, false
}

// objectOf returns v as an object (an AMF0 object or ECMA array), else an
// empty one.
func objectOf(v any) amf0.Object {
	switch o := v.(type) {
	case amf0.Object:
		return o
	case amf0.ECMAArray:
		return amf0.Object(o)
	}
	return nil
}

func get(o amf0.Object, key string) any {
	v, _ := o.Get(key)
	return v
}
