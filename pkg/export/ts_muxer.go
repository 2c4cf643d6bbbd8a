package export

import (
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// tsMuxer writes frames as MPEG-TS: one program, H.264 (or H.265) on PID
// 256 and, when the clip has audio, Opus on PID 257, with the bus's
// timestamps.
type tsMuxer struct {
	w     *mpegts.Writer
	video *mpegts.Track
	h265  bool
	audio *mpegts.Track // nil without audio
}

func newTSMuxer(w io.Writer, tr tracks) (*tsMuxer, error) {
	m := &tsMuxer{video: &mpegts.Track{Codec: &codecs.H264{}}}
	if tr.video == tsframes.CodecH265 {
		m.video, m.h265 = &mpegts.Track{Codec: &codecs.H265{}}, true
	}
	list := []*mpegts.Track{m.video}
	if tr.audioChannels > 0 {
		// Channel config codes 1 to 8 are those channel counts (ETSI TS
		// Opus in MPEG-2 TS, table 4-3).
		desc := &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(tr.audioChannels)}
		m.audio = &mpegts.Track{Codec: &codecs.Opus{Desc: desc}}
		list = append(list, m.audio)
	}
	m.w = &mpegts.Writer{W: w, Tracks: list}
	if err := m.w.Initialize(); err != nil {
		return nil, fmt.Errorf("mpeg-ts writer: %w", err)
	}
	return m, nil
}

func (m *tsMuxer) frame(f tsframes.Frame) error {
	if f.Kind == tsframes.KindVideo {
		var au h264.AnnexB
		if err := au.Unmarshal(f.Data); err != nil {
			return fmt.Errorf("video frame at pts %d: %w", f.PTS, err)
		}
		write := m.w.WriteH264
		if m.h265 {
			write = m.w.WriteH265
		}
		if err := write(m.video, f.PTS, f.DTS, au); err != nil {
			return fmt.Errorf("write video at pts %d: %w", f.PTS, err)
		}
		return nil
	}
	if m.audio == nil {
		return nil
	}
	if err := m.w.WriteOpus(m.audio, f.PTS, [][]byte{f.Data}); err != nil {
		return fmt.Errorf("write audio at pts %d: %w", f.PTS, err)
	}
	return nil
}

// close has nothing left to write: every frame went out as it came.
func (m *tsMuxer) close() error { return nil }
