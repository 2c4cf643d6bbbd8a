package tsframes

import (
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// opusSampleRate is the rate Opus is always decoded at in MPEG-TS.
const opusSampleRate = 48000

// trackOf describes a track found by mediacommon's reader as announced.
// Every codec is announced; only H.264, H.265 and Opus have WebRTC set.
func trackOf(t *mpegts.Track) Track {
	tr := Track{PID: t.PID, Kind: KindData, Codec: CodecUnknown}
	switch c := t.Codec.(type) {
	case *codecs.H264:
		tr.Kind, tr.Codec, tr.WebRTC = KindVideo, CodecH264, true
	case *codecs.H265:
		tr.Kind, tr.Codec, tr.WebRTC = KindVideo, CodecH265, true
	case *codecs.MPEG4Video:
		tr.Kind, tr.Codec = KindVideo, CodecMPEG4Video
	case *codecs.MPEG1Video:
		tr.Kind, tr.Codec = KindVideo, CodecMPEG12Video
	case *codecs.Opus:
		tr.Kind, tr.Codec, tr.WebRTC = KindAudio, CodecOpus, true
		tr.SampleRate = opusSampleRate
		if c.Desc != nil {
			tr.Channels = c.Desc.ChannelCount()
		}
	case *codecs.MPEG4Audio:
		tr.Kind, tr.Codec = KindAudio, CodecAAC
		tr.SampleRate = c.SampleRate
		tr.Channels = AACChannels(c.ChannelConfig)
	case *codecs.MPEG4AudioLATM:
		// Sample rate and channels are in the LATM StreamMuxConfig, which
		// the PMT does not carry: left unknown.
		tr.Kind, tr.Codec = KindAudio, CodecAACLATM
	case *codecs.MPEG1Audio:
		tr.Kind, tr.Codec = KindAudio, CodecMPEGAudio
	case *codecs.AC3:
		tr.Kind, tr.Codec = KindAudio, CodecAC3
		tr.SampleRate, tr.Channels = c.SampleRate, c.ChannelCount
	case *codecs.EAC3:
		tr.Kind, tr.Codec = KindAudio, CodecEAC3
		tr.SampleRate, tr.Channels = c.SampleRate, c.ChannelCount
	case *codecs.KLV:
		tr.Kind, tr.Codec = KindData, CodecKLV
	case *codecs.DVBSubtitle:
		tr.Kind, tr.Codec = KindData, CodecDVBSubtitle
	}
	return tr
}

// AACChannels is the channel count of an MPEG-4 audio
// channel_configuration (ISO 14496-3 table 1.19), 0 when a PCE defines it or
// it is reserved.
func AACChannels(conf uint8) int {
	switch {
	case conf >= 1 && conf <= 6:
		return int(conf)
	case conf == 7:
		return 8
	}
	return 0
}
