package rtmp

import (
	"bytes"
	"encoding/base64"
	"io"
	"testing"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	rtmpmsg "github.com/bluenviron/gortmplib/pkg/message"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// cueSink records what reaches the publication.
type cueSink struct {
	frames []tsframes.Frame
	cues   []tsframes.Cue
}

func (s *cueSink) Tracks(tsframes.Announcement) error { return nil }
func (s *cueSink) Frame(f tsframes.Frame) error       { s.frames = append(s.frames, f); return nil }
func (s *cueSink) Cue(c tsframes.Cue) error           { s.cues = append(s.cues, c); return nil }

// fakeConn delivers msgs, then io.EOF.
type fakeConn struct{ msgs []rtmpmsg.Message }

func (c *fakeConn) BytesReceived() uint64       { return 0 }
func (c *fakeConn) BytesSent() uint64           { return 0 }
func (c *fakeConn) Write(rtmpmsg.Message) error { return nil }
func (c *fakeConn) Read() (rtmpmsg.Message, error) {
	if len(c.msgs) == 0 {
		return nil, io.EOF
	}
	m := c.msgs[0]
	c.msgs = c.msgs[1:]
	return m, nil
}

// TestCuePoints: onCuePoint data messages become cues on the frames'
// timeline: one carrying a splice_info_section in base64 (as AWS Elemental
// and Wowza pass SCTE-35 on) gives that section at the cue point's time; a
// cue-out without a section gives a splice_insert out of network with its
// duration, at the latest frame's PTS when it has no time; other data
// messages and cue points are ignored. The messages still reach
// gortmplib's Reader.
func TestCuePoints(t *testing.T) {
	sec := tstest.SpliceInsert(11, 123456, 0, 15*90000)
	withSection := &rtmpmsg.DataAMF0{Payload: amf0.Data{"onCuePoint", amf0.Object{
		{Key: "name", Value: "scte35"}, {Key: "time", Value: 2.5}, {Key: "type", Value: "event"},
		{Key: "parameters", Value: amf0.ECMAArray{{Key: "cue", Value: base64.StdEncoding.EncodeToString(sec)}}},
	}}}
	cueOut := &rtmpmsg.DataAMF0{Payload: amf0.Data{"onCuePoint", amf0.Object{
		{Key: "name", Value: "CUE-OUT"}, {Key: "type", Value: "event"},
		{Key: "parameters", Value: amf0.Object{{Key: "duration", Value: 30.0}, {Key: "id", Value: 5.0}}},
	}}}
	chapter := &rtmpmsg.DataAMF0{Payload: amf0.Data{"onCuePoint", amf0.Object{{Key: "name", Value: "chapter 2"}, {Key: "time", Value: 1.0}}}}
	meta := &rtmpmsg.DataAMF0{Payload: amf0.Data{"onMetaData", amf0.Object{{Key: "cue", Value: base64.StdEncoding.EncodeToString(sec)}}}}

	var s cueSink
	c := &cuePoints{Sink: &s}
	conn := c.conn(&fakeConn{msgs: []rtmpmsg.Message{withSection, chapter, meta}})
	for range 3 {
		if m, err := conn.Read(); err != nil || m == nil {
			t.Fatalf("Read: %v %v", m, err)
		}
	}
	// Before any frame, a cue point without a time has no timeline.
	c.data(cueOut.Payload)
	if err := c.Frame(tsframes.Frame{PTS: 90000, Kind: tsframes.KindVideo}); err != nil {
		t.Fatal(err)
	}
	c.data(cueOut.Payload)

	if len(s.cues) != 2 || len(s.frames) != 1 {
		t.Fatalf("%d cues, %d frames: %+v", len(s.cues), len(s.frames), s.cues)
	}
	if got := s.cues[0]; got.PTS != 225000 || !bytes.Equal(got.Section, tsframes.RetimeSpliceInfo(sec, 225000)) ||
		got.SpliceTime != 225000 || got.EventID != 11 || got.Duration != 15*90000 {
		t.Errorf("cue with a section: %+v", got)
	}
	got := s.cues[1]
	if got.PTS != 90000 || got.Command != tsframes.SpliceInsert || !got.OutOfNetwork || got.Duration != 30*90000 || got.EventID != 5 {
		t.Errorf("cue-out: %+v", got)
	}
	if si, err := tsframes.ParseSpliceInfo(got.Section); err != nil || si != got.SpliceInfo || si.SpliceTime != 90000 {
		t.Errorf("cue-out section %x: %+v %v", got.Section, si, err)
	}
}

// TestPublisherCuePoint: an onCuePoint carrying a splice_info_section, sent
// by a publisher between its frames, reaches the publication as a cue at
// the cue point's time.
func TestPublisherCuePoint(t *testing.T) {
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))
	p, err := dial(t, l, "live/cues", ref)
	if err != nil {
		t.Fatal(err)
	}
	half := len(ref.Frames) / 2 // 3 s: the tracks are known, the publication live
	p.send(t, ref.Frames[:half])
	sec := tstest.SpliceInsert(21, 1, 0, 0)
	at := float64(ref.Frames[half].PTS)/90000 + 1
	if err := p.c.Write(&rtmpmsg.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{"onCuePoint", amf0.Object{
		{Key: "name", Value: "scte35"}, {Key: "time", Value: at}, {Key: "type", Value: "event"},
		{Key: "parameters", Value: amf0.Object{{Key: "scte35", Value: base64.StdEncoding.EncodeToString(sec)}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	p.send(t, ref.Frames[half:])
	p.c.Close()

	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
	cues := pub.Cues()
	if len(cues) != 1 {
		t.Fatalf("%d cues, want 1", len(cues))
	}
	if c := cues[0]; c.PTS != int64(at*90000) || c.EventID != 21 || !bytes.Equal(c.Section, tsframes.RetimeSpliceInfo(sec, c.PTS)) ||
		c.SpliceTime != c.PTS {
		t.Fatalf("cue %+v, want event 21 at PTS %d", c, int64(at*90000))
	}
}
