package export

import (
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Fragmenting of the fMP4 output: a fragment ends before each keyframe, and
// earlier when its video spans fragmentMaxDuration or its samples
// fragmentMaxBytes, so that a long GOP does not grow the buffer.
const (
	fragmentMaxDuration = 2 * 90000
	fragmentMaxBytes    = 8 << 20
	videoTimeScale      = 90000
	opusTimeScale       = 48000
	videoTrackID        = 1
	audioTrackID        = 2
	// defaultVideoDuration is the duration of a last video sample whose
	// predecessor's is unknown (one frame at 30 fps).
	defaultVideoDuration = 3000
)

// fmp4Muxer writes frames as fragmented MP4: an init segment (H.264 from the
// first keyframe's SPS and PPS, Opus when the clip has audio), then one
// moof+mdat per fragment. Times start at 0 at the first keyframe's DTS;
// audio before it is left out.
type fmp4Muxer struct {
	w        io.Writer
	buf      seekablebuffer.Buffer
	channels int
	started  bool
	zero     int64 // DTS of the first keyframe
	initDone bool
	seq      uint32
	bytes    int // payload bytes of the fragment being built

	video fmp4Track
	audio fmp4Track
	// pending is the last video sample, whose duration the next one gives.
	pending    *fmp4.Sample
	pendingDTS int64
	lastDur    uint32
	sps, pps   []byte
}

// fmp4Track is the samples of one track in the fragment being built.
type fmp4Track struct {
	base    uint64 // time of samples[0], in the track's time scale
	samples []*fmp4.Sample
}

func newFMP4Muxer(w io.Writer, tr tracks) *fmp4Muxer {
	return &fmp4Muxer{w: w, channels: tr.audioChannels}
}

func (m *fmp4Muxer) frame(f tsframes.Frame) error {
	if f.Kind != tsframes.KindVideo {
		return m.audioFrame(f)
	}
	var au h264.AnnexB
	if err := au.Unmarshal(f.Data); err != nil {
		return fmt.Errorf("video frame at pts %d: %w", f.PTS, err)
	}
	if !m.started {
		m.started, m.zero = true, f.DTS
		for _, n := range au {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				m.sps = n
			case h264.NALUTypePPS:
				m.pps = n
			}
		}
		if m.sps == nil || m.pps == nil {
			return fmt.Errorf("first keyframe at pts %d lacks SPS or PPS", f.PTS)
		}
	}
	payload, err := h264.AVCC(au).Marshal()
	if err != nil {
		return fmt.Errorf("video frame at pts %d: %w", f.PTS, err)
	}
	s := &fmp4.Sample{PTSOffset: int32(f.PTS - f.DTS), IsNonSyncSample: !f.Key, Payload: payload}
	if m.pending != nil {
		d := f.DTS - m.pendingDTS
		if d <= 0 || d > 1<<31 {
			d = int64(max(m.lastDur, 1))
		}
		m.pending.Duration, m.lastDur = uint32(d), uint32(d)
		if err := m.pushVideo(); err != nil {
			return err
		}
	}
	if f.Key && len(m.video.samples) > 0 {
		if err := m.flush(); err != nil {
			return err
		}
	}
	m.pending, m.pendingDTS = s, f.DTS
	return nil
}

// pushVideo moves the pending sample into the fragment, ending the
// fragment first when it is full.
func (m *fmp4Muxer) pushVideo() error {
	v := &m.video
	if len(v.samples) > 0 && (m.pendingDTS-int64(v.base)-m.zero >= fragmentMaxDuration || m.bytes >= fragmentMaxBytes) {
		if err := m.flush(); err != nil {
			return err
		}
	}
	if len(v.samples) == 0 {
		v.base = uint64(m.pendingDTS - m.zero)
	}
	v.samples = append(v.samples, m.pending)
	m.bytes += len(m.pending.Payload)
	m.pending = nil
	return nil
}

func (m *fmp4Muxer) audioFrame(f tsframes.Frame) error {
	if m.channels == 0 || !m.started || f.PTS < m.zero {
		return nil
	}
	a := &m.audio
	if len(a.samples) == 0 {
		a.base = uint64((f.PTS - m.zero) * opusTimeScale / videoTimeScale)
	}
	a.samples = append(a.samples, &fmp4.Sample{
		Duration: uint32(f.Duration * opusTimeScale / videoTimeScale),
		Payload:  f.Data,
	})
	m.bytes += len(f.Data)
	if m.bytes >= fragmentMaxBytes {
		return m.flush()
	}
	return nil
}

// flush writes the init segment when it has not been written, then the
// fragment being built.
func (m *fmp4Muxer) flush() error {
	if !m.initDone {
		init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
			ID: videoTrackID, TimeScale: videoTimeScale,
			Codec: &codecs.H264{SPS: m.sps, PPS: m.pps},
		}}}
		if m.channels > 0 {
			init.Tracks = append(init.Tracks, &fmp4.InitTrack{
				ID: audioTrackID, TimeScale: opusTimeScale,
				Codec: &codecs.Opus{ChannelCount: m.channels},
			})
		}
		if err := m.write(init.Marshal); err != nil {
			return fmt.Errorf("init segment: %w", err)
		}
		m.initDone = true
	}
	var part fmp4.Part
	if len(m.video.samples) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: videoTrackID, BaseTime: m.video.base, Samples: m.video.samples})
	}
	if len(m.audio.samples) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: audioTrackID, BaseTime: m.audio.base, Samples: m.audio.samples})
	}
	if len(part.Tracks) == 0 {
		return nil
	}
	m.seq++
	part.SequenceNumber = m.seq
	if err := m.write(part.Marshal); err != nil {
		return fmt.Errorf("fragment %d: %w", m.seq, err)
	}
	m.video.samples, m.audio.samples, m.bytes = nil, nil, 0
	return nil
}

// write marshals a box tree into the buffer and writes it out.
func (m *fmp4Muxer) write(marshal func(io.WriteSeeker) error) error {
	m.buf.Reset()
	if err := marshal(&m.buf); err != nil {
		return err
	}
	_, err := m.w.Write(m.buf.Bytes())
	return err
}

// close writes the last fragment; the last video sample lasts as long as
// the one before it.
func (m *fmp4Muxer) close() error {
	if !m.started {
		return nil
	}
	if m.pending != nil {
		m.pending.Duration = m.lastDur
		if m.pending.Duration == 0 {
			m.pending.Duration = defaultVideoDuration
		}
		if err := m.pushVideo(); err != nil {
			return err
		}
	}
	return m.flush()
}
