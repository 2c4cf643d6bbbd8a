package rtmp

import (
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// Codecs that Enhanced RTMP carries and MPEG-TS (so tsframes) does not name.
const (
	codecAV1 tsframes.Codec = "AV1"
	codecVP9 tsframes.Codec = "VP9"
)

// firstPID is the PID of the first track: RTMP has none, and tracks are
// numbered from here in gortmplib's order (video first), as ffmpeg's
// MPEG-TS muxer numbers its streams.
const firstPID = 0x100

// trackOf describes an RTMP track as announced. Every codec is announced;
// only H.264, H.265 (Enhanced RTMP) and Opus have WebRTC set.
func trackOf(pid uint16, t *gortmplib.Track) tsframes.Track {
	tr := tsframes.Track{PID: pid, Kind: tsframes.KindAudio, Codec: tsframes.CodecUnknown}
	if t.Codec.IsVideo() {
		tr.Kind = tsframes.KindVideo
	}
	switch c := t.Codec.(type) {
	case *codecs.H264:
		tr.Codec, tr.WebRTC = tsframes.CodecH264, true
	case *codecs.H265:
		tr.Codec, tr.WebRTC = tsframes.CodecH265, true
	case *codecs.AV1:
		tr.Codec = codecAV1
	case *codecs.VP9:
		tr.Codec = codecVP9
	case *codecs.Opus:
		tr.Codec, tr.WebRTC, tr.SampleRate = tsframes.CodecOpus, true, 48000
		if c.IDHeader != nil {
			tr.Channels = int(c.IDHeader.ChannelCount)
		}
	case *codecs.MPEG4Audio:
		tr.Codec = tsframes.CodecAAC
		if c.Config != nil {
			tr.SampleRate = c.Config.SampleRate
			tr.Channels = tsframes.AACChannels(c.Config.ChannelConfig)
		}
	case *codecs.MPEG1Audio:
		tr.Codec = tsframes.CodecMPEGAudio
	case *codecs.AC3:
		tr.Codec, tr.SampleRate, tr.Channels = tsframes.CodecAC3, c.SampleRate, c.ChannelCount
	}
	return tr
}
