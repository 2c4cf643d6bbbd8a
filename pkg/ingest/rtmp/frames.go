package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// ticks90k converts an RTMP timestamp to the 90 kHz clock.
func ticks90k(d time.Duration) int64 {
	return d.Nanoseconds() * 9 / 100_000
}

// frames reads the tracks and the media of an accepted publisher from conn
// and hands them to h: one announcement of every track, then the access
// units of its H.264 and Opus tracks, and the frames of its AAC (as ADTS),
// MPEG audio and AC-3 tracks as an MPEG-TS source's (tsframes'
// Options.SourceAudio: what a transcoding stage turns into Opus); the
// others are announced only. It
// returns nil when the publisher ends the connection, h's error when h
// fails, and otherwise the error that ended the read. analyzed is called
// once the tracks are known (gortmplib finds them in the first 2 s of
// media, which it keeps and delivers afterwards).
func frames(ctx context.Context, conn gortmplib.Conn, h tsframes.Sink, analyzed func()) (err error) {
	defer func() {
		// A publisher must not take the broker down with a message that
		// gortmplib does not expect: its publication ends instead.
		if v := recover(); v != nil {
			err = fmt.Errorf("rtmp: reading the publisher's messages: %v", v)
		}
	}()
	cues := &cuePoints{Sink: h} // SCTE-35 cue points (cue_points.go)
	h = cues
	r := &gortmplib.Reader{Conn: cues.conn(conn)}
	if err := r.Initialize(); err != nil {
		return endOf(fmt.Errorf("rtmp: reading the tracks: %w", err))
	}
	analyzed()
	d := &frameDemuxer{h: h}
	for i, t := range r.Tracks() {
		pid := uint16(firstPID + i)
		d.ann.Tracks = append(d.ann.Tracks, trackOf(pid, t))
		switch c := t.Codec.(type) {
		case *codecs.H264:
			st := &h264Track{}
			st.accessUnit([][]byte{c.SPS, c.PPS})
			d.ann.Tracks[i].ProfileLevelID = st.profileLevelID()
			r.OnDataH264(t, func(pts, dts time.Duration, au [][]byte) { d.h264(i, st, pts, dts, au) })
		case *codecs.H265:
			// Enhanced RTMP: the configuration's parameter sets, then
			// access units as MPEG-TS's.
			st := &tsframes.H265AccessUnits{}
			_, _, _, _ = st.Next([][]byte{c.VPS, c.SPS, c.PPS})
			st.Fill(&d.ann.Tracks[i])
			r.OnDataH265(t, func(pts, dts time.Duration, au [][]byte) { d.h265(i, st, pts, dts, au) })
		case *codecs.Opus:
			r.OnDataOpus(t, func(pts time.Duration, pkt []byte) { d.opus(pid, pts, pkt) })
		case *codecs.MPEG4Audio:
			// As an MPEG-TS source carries it: ADTS frames, for the
			// transcoding stage.
			if c.Config == nil {
				ignore(r, t)
				break
			}
			cfg := *c.Config
			r.OnDataMPEG4Audio(t, func(pts time.Duration, au []byte) { d.aac(pid, &cfg, pts, au) })
		case *codecs.MPEG1Audio:
			r.OnDataMPEG1Audio(t, func(pts time.Duration, frame []byte) {
				d.sourceAudio(pid, tsframes.CodecMPEGAudio, pts, frame)
			})
		case *codecs.AC3:
			r.OnDataAC3(t, func(pts time.Duration, frame []byte) { d.sourceAudio(pid, tsframes.CodecAC3, pts, frame) })
		default:
			ignore(r, t) // gortmplib's Read needs a callback for every track
		}
	}
	if d.err = h.Tracks(d.announcement()); d.err != nil {
		return d.err
	}
	for {
		if err := r.Read(); err != nil {
			return endOf(err)
		}
		if d.err != nil {
			return d.err
		}
		if ctx.Err() != nil {
			return nil // the publication is stopping; its cause is known
		}
	}
}

// ignore sets a callback that drops the data of t: a track announced, not
// published.
func ignore(r *gortmplib.Reader, t *gortmplib.Track) {
	switch t.Codec.(type) {
	case *codecs.AV1:
		r.OnDataAV1(t, func(time.Duration, [][]byte) {})
	case *codecs.VP9:
		r.OnDataVP9(t, func(time.Duration, []byte) {})
	case *codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(t, func(time.Duration, []byte) {})
	case *codecs.MPEG1Audio:
		r.OnDataMPEG1Audio(t, func(time.Duration, []byte) {})
	case *codecs.AC3:
		r.OnDataAC3(t, func(time.Duration, []byte) {})
	case *codecs.FLAC:
		r.OnDataFLAC(t, func(time.Duration, []byte) {})
	case *codecs.G711:
		r.OnDataG711(t, func(time.Duration, []byte) {})
	case *codecs.LPCM:
		r.OnDataLPCM(t, func(time.Duration, []byte) {})
	}
}

// endOf is nil for the end of a connection that the publisher closed.
func endOf(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// frameDemuxer turns the callbacks of gortmplib's Reader into Handler calls.
type frameDemuxer struct {
	h   tsframes.Sink
	ann tsframes.Announcement
	err error // h's error: the end of the publication
}

func (d *frameDemuxer) announcement() tsframes.Announcement {
	return tsframes.Announcement{Tracks: append([]tsframes.Track(nil), d.ann.Tracks...)}
}

func (d *frameDemuxer) h264(track int, st *h264Track, pts, dts time.Duration, au [][]byte) {
	if d.err != nil {
		return
	}
	data, key, spsChanged := st.accessUnit(au)
	if id := st.profileLevelID(); spsChanged && id != d.ann.Tracks[track].ProfileLevelID {
		d.ann.Tracks[track].ProfileLevelID = id
		if d.err = d.h.Tracks(d.announcement()); d.err != nil {
			return
		}
	}
	if data == nil {
		return
	}
	d.err = d.h.Frame(tsframes.Frame{
		PID:   d.ann.Tracks[track].PID,
		Kind:  tsframes.KindVideo,
		Codec: tsframes.CodecH264,
		PTS:   ticks90k(pts),
		DTS:   ticks90k(dts),
		Key:   key,
		Data:  data,
	})
}

func (d *frameDemuxer) h265(track int, st *tsframes.H265AccessUnits, pts, dts time.Duration, au [][]byte) {
	if d.err != nil {
		return
	}
	data, key, changed, err := st.Next(au)
	if changed {
		st.Fill(&d.ann.Tracks[track])
		if d.err = d.h.Tracks(d.announcement()); d.err != nil {
			return
		}
	}
	if err != nil {
		return // before the first keyframe, or unusable
	}
	d.err = d.h.Frame(tsframes.Frame{
		PID:   d.ann.Tracks[track].PID,
		Kind:  tsframes.KindVideo,
		Codec: tsframes.CodecH265,
		PTS:   ticks90k(pts),
		DTS:   ticks90k(dts),
		Key:   key,
		Data:  data,
	})
}

func (d *frameDemuxer) opus(pid uint16, pts time.Duration, pkt []byte) {
	dur := opus.PacketDuration2(pkt) * 90000 / 48000
	if d.err != nil || dur == 0 {
		return
	}
	t := ticks90k(pts)
	d.err = d.h.Frame(tsframes.Frame{
		PID:      pid,
		Kind:     tsframes.KindAudio,
		Codec:    tsframes.CodecOpus,
		PTS:      t,
		DTS:      t,
		Duration: dur,
		Data:     append([]byte(nil), pkt...),
	})
}

// aac hands one AAC access unit to h as an ADTS frame of cfg.
func (d *frameDemuxer) aac(pid uint16, cfg *mpeg4audio.AudioSpecificConfig, pts time.Duration, au []byte) {
	if d.err != nil {
		return
	}
	adts, err := mpeg4audio.ADTSPackets{{Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: cfg.ChannelConfig, AU: au}}.Marshal()
	if err != nil {
		// Not expressible in ADTS (a sample rate without an index, an
		// oversized unit): the track stays announced, not transcoded.
		return
	}
	d.sourceAudio(pid, tsframes.CodecAAC, pts, adts)
}

// sourceAudio hands one frame of audio that WebRTC cannot carry to h.
func (d *frameDemuxer) sourceAudio(pid uint16, codec tsframes.Codec, pts time.Duration, data []byte) {
	if d.err != nil {
		return
	}
	d.err = d.h.Frame(tsframes.Frame{
		PID:   pid,
		Kind:  tsframes.KindAudio,
		Codec: codec,
		PTS:   ticks90k(pts),
		DTS:   ticks90k(pts),
		Data:  append([]byte(nil), data...),
	})
}
