package bus

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// encoder builds the messages of one epoch of a media stream, the inverse
// of decoder. Its methods are pure: they depend only on their arguments and
// keep nothing (docs/bus.md describes the format).
type encoder struct {
	subj  Subjects
	epoch string // Whepcast-Epoch, formatted once
	// derived marks every frame Whepcast-Derived: the encoder of a
	// TrackPublisher.
	derived bool
}

func newEncoder(subj Subjects, epoch uint64) encoder {
	return encoder{subj: subj, epoch: strconv.FormatUint(epoch, 10)}
}

// announcement returns the message of an announcement (data is its JSON):
// kept alone on its subject by the rollup, beyond MaxAge by its TTL.
func (e encoder) announcement(data []byte) *nats.Msg {
	return &nats.Msg{
		Subject: e.subj.Tracks,
		Data:    data,
		Header: nats.Header{
			HeaderEpoch:            []string{e.epoch},
			jetstream.MsgRollup:    []string{jetstream.MsgRollupSubject},
			jetstream.MsgTTLHeader: []string{"never"},
		},
	}
}

// partSize is the payload of each message of a split frame on a
// connection whose max payload is maxPayload: HeaderRoom is kept for the
// headers, and a part carries at least HeaderRoom bytes.
func partSize(maxPayload int64) int {
	return max(int(maxPayload)-HeaderRoom, HeaderRoom)
}

// frame returns the messages that carry one frame, in publishing order:
// packets is the frame, or the audio packets of one PES (2 to
// MaxAudioGroup), which go out as one message whose payload is their
// concatenation. video selects the video subjects (v.key or v.delta by the
// first packet's Key) and headers, otherwise the audio ones. A payload
// larger than maxData is split: the first part on the frame's subject with
// Whepcast-Parts, the next ones on the part subject. The messages share
// the packets' data when there is one packet. It fails when the frame
// needs more than MaxParts parts.
func (e encoder) frame(video bool, packets []tsframes.Frame, maxData int) ([]*nats.Msg, error) {
	size := 0
	for _, p := range packets {
		size += len(p.Data)
	}
	n := max(1, (size+maxData-1)/maxData)
	if n > MaxParts {
		return nil, fmt.Errorf("frame of %d bytes needs %d parts, more than %d", size, n, MaxParts)
	}
	f := packets[0]
	if len(packets) > 1 {
		f = mergeAudio(packets)
	}
	subject := e.subj.Audio
	if video {
		subject = e.subj.Delta
		if f.Key {
			subject = e.subj.Key
		}
	}
	msgs := make([]*nats.Msg, n)
	msgs[0] = &nats.Msg{
		Subject: subject,
		Header:  e.frameHeader(f, video, n, packets),
		Data:    f.Data[:min(len(f.Data), maxData)],
	}
	for i := 2; i <= n; i++ {
		msgs[i-1] = &nats.Msg{
			Subject: e.subj.Part,
			Data:    f.Data[(i-1)*maxData : min(len(f.Data), i*maxData)],
			Header: nats.Header{
				HeaderEpoch: []string{e.epoch},
				HeaderPart:  []string{strconv.Itoa(i) + "/" + strconv.Itoa(n)},
			},
		}
	}
	return msgs, nil
}

// mergeAudio returns the packets of group as one frame: their data end to
// end (a new buffer), the first's PTS, their total duration.
func mergeAudio(group []tsframes.Frame) tsframes.Frame {
	size := 0
	var dur int64
	for _, g := range group {
		size += len(g.Data)
		dur += g.Duration
	}
	f := group[0]
	f.Duration, f.More = dur, false
	f.Data = make([]byte, 0, size)
	for _, g := range group {
		f.Data = append(f.Data, g.Data...)
	}
	return f
}

// frameHeader is the header of a frame's first message: f is the frame
// (merged when group holds several audio packets), parts the number of
// messages it spans.
func (e encoder) frameHeader(f tsframes.Frame, video bool, parts int, group []tsframes.Frame) nats.Header {
	h := make(nats.Header, 8)
	h[HeaderEpoch] = []string{e.epoch}
	h[HeaderCodec] = []string{string(f.Codec)}
	h[HeaderPTS] = []string{strconv.FormatInt(f.PTS, 10)}
	if video {
		h[HeaderDTS] = []string{strconv.FormatInt(f.DTS, 10)}
		if f.Key {
			h[HeaderKey] = []string{"1"}
		}
	} else {
		h[HeaderDur] = []string{strconv.FormatInt(f.Duration, 10)}
		if len(group) > 1 {
			var sizes, durs []byte
			for i, g := range group {
				if i > 0 {
					sizes, durs = append(sizes, ','), append(durs, ',')
				}
				sizes = strconv.AppendInt(sizes, int64(len(g.Data)), 10)
				durs = strconv.AppendInt(durs, g.Duration, 10)
			}
			h[HeaderSizes] = []string{string(sizes)}
			h[HeaderDurs] = []string{string(durs)}
		}
	}
	if parts > 1 {
		h[HeaderParts] = []string{strconv.Itoa(parts)}
	}
	if e.derived {
		h[HeaderDerived] = []string{"1"}
	}
	return h
}
