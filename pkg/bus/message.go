package bus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// MaxFrameSize bounds a reassembled frame; larger part sets are discarded.
const MaxFrameSize = 64 << 20

// Message is one message of a media stream as Subscribe delivers it: either a
// track announcement (Tracks set) or a frame (Frame set, reassembled when it
// was split into parts).
type Message struct {
	// Seq is the stream sequence of the message (of its first part); the
	// packets of an audio message carrying several share it.
	Seq uint64
	// Epoch is the epoch of the publication that sent it.
	Epoch uint64
	// Tracks is set for an announcement message.
	Tracks *Announcement
	// Frame is set for media: Kind, Codec, PTS, DTS, Duration, Key and
	// Data, and PID when the announcement of its epoch is known. Data is
	// owned by the receiver.
	Frame tsframes.Frame
	// Derived is true for a frame of a derived track (Whepcast-Derived: 1,
	// published by a TrackPublisher).
	Derived bool
	// Cue is set for an SCTE-35 cue (only readers that asked for cues get
	// them: SubscribeOptions.Cues, RangeReader.DeliverCues); its PTS is on
	// the timeline of the frames of its epoch.
	Cue *tsframes.Cue
	// Published is when JetStream stored the message (of its last part
	// for a split frame), by the NATS server's clock, from the message
	// metadata; zero when unknown.
	Published time.Time

	// group is the Whepcast-Sizes and Whepcast-Durs of an audio message
	// carrying several packets (split delivers them one by one).
	group *audioGroup
}

// audioGroup is the layout of an audio message of several packets.
type audioGroup struct {
	sizes []int
	durs  []int64
}

// IsFrame reports whether m carries a frame (not an announcement or a cue).
func (m Message) IsFrame() bool { return m.Tracks == nil && m.Cue == nil }

// pendingFrame is a frame whose parts are being collected.
type pendingFrame struct {
	msg  Message
	want int
	got  int
}

// decoder turns stored messages, in stream order, into Messages: it parses
// headers, reassembles split frames and remembers the latest announcement to
// fill in PIDs. It is owned by one goroutine.
type decoder struct {
	subj    Subjects
	ann     *Announcement
	pending *pendingFrame
	// sourceVideo delivers the source's video frames (those not derived)
	// instead of the announced video track's (SubscribeOptions.SourceVideo).
	sourceVideo bool
	// videoKey drops video until a keyframe: an announcement switched the
	// H.264 frames played between the source's and a derived track's.
	videoKey bool
	// incomplete counts split frames discarded because a part was missing.
	incomplete uint64
	// cues delivers the cue subject's messages (ignored otherwise).
	cues bool
}

// reset forgets partial state (after a jump in the stream).
func (d *decoder) reset() {
	if d.pending != nil {
		d.incomplete++
		d.pending = nil
	}
}

// push decodes one stored message. It returns the complete Message when one
// is ready; ok is false for a part that does not complete a frame, an
// unknown subject or a malformed message (then err says why).
func (d *decoder) push(seq uint64, subject string, h nats.Header, data []byte) (m Message, ok bool, err error) {
	epoch, err := headerUint(h, HeaderEpoch)
	if err != nil {
		return Message{}, false, fmt.Errorf("seq %d on %s: %w", seq, subject, err)
	}
	switch subject {
	case d.subj.Tracks:
		var a Announcement
		if err := json.Unmarshal(data, &a); err != nil {
			return Message{}, false, fmt.Errorf("seq %d: decode announcement: %w", seq, err)
		}
		if prev := d.ann != nil && d.ann.Epoch == a.Epoch && derivedVideo(d.ann); prev != derivedVideo(&a) {
			d.videoKey = true
		}
		d.ann = &a
		return Message{Seq: seq, Epoch: epoch, Tracks: &a}, true, nil
	case d.subj.Key, d.subj.Delta, d.subj.Audio:
		d.reset()
		f, group, err := d.frame(subject, epoch, h, data)
		if err != nil {
			return Message{}, false, fmt.Errorf("seq %d on %s: %w", seq, subject, err)
		}
		m := Message{Seq: seq, Epoch: epoch, Frame: f, group: group, Derived: headerValue(h, HeaderDerived) == "1"}
		parts := 1
		if v := headerValue(h, HeaderParts); v != "" {
			parts, err = strconv.Atoi(v)
			if err != nil || parts < 1 || parts > MaxParts {
				return Message{}, false, fmt.Errorf("seq %d: bad %s %q", seq, HeaderParts, v)
			}
		}
		if parts == 1 {
			return m, d.keep(&m), nil
		}
		buf := make([]byte, len(data), min(len(data)*parts, MaxFrameSize))
		copy(buf, data)
		m.Frame.Data = buf
		d.pending = &pendingFrame{msg: m, want: parts, got: 1}
		return Message{}, false, nil
	case d.subj.Cue:
		if !d.cues {
			return Message{}, false, nil
		}
		c, err := decodeCue(h, data)
		if err != nil {
			return Message{}, false, fmt.Errorf("seq %d on %s: %w", seq, subject, err)
		}
		return Message{Seq: seq, Epoch: epoch, Cue: c}, true, nil
	case d.subj.Part:
		i, n, err := parsePart(headerValue(h, HeaderPart))
		if err != nil {
			d.reset()
			return Message{}, false, fmt.Errorf("seq %d: %w", seq, err)
		}
		p := d.pending
		if p == nil || p.msg.Epoch != epoch || p.want != n || p.got+1 != i {
			d.reset()
			return Message{}, false, fmt.Errorf("seq %d: part %d/%d of epoch %d without its preceding parts", seq, i, n, epoch)
		}
		if len(p.msg.Frame.Data)+len(data) > MaxFrameSize {
			d.reset()
			return Message{}, false, fmt.Errorf("seq %d: frame larger than %d bytes", seq, MaxFrameSize)
		}
		p.msg.Frame.Data = append(p.msg.Frame.Data, data...)
		p.got++
		if p.got < p.want {
			return Message{}, false, nil
		}
		d.pending = nil
		return p.msg, d.keep(&p.msg), nil
	}
	return Message{}, false, nil
}

func (d *decoder) frame(subject string, epoch uint64, h nats.Header, data []byte) (f tsframes.Frame, group *audioGroup, err error) {
	pts, err := headerInt(h, HeaderPTS)
	if err != nil {
		return tsframes.Frame{}, nil, err
	}
	f = tsframes.Frame{
		Codec: tsframes.Codec(headerValue(h, HeaderCodec)),
		PTS:   pts,
		Data:  data,
	}
	if subject == d.subj.Audio {
		f.Kind = tsframes.KindAudio
		f.DTS = pts
		if headerValue(h, HeaderDur) != "" {
			if f.Duration, err = headerInt(h, HeaderDur); err != nil {
				return tsframes.Frame{}, nil, err
			}
		}
		if g, err := parseAudioGroup(h); err != nil {
			return tsframes.Frame{}, nil, err
		} else if g != nil {
			group = g
		}
		if d.ann != nil && d.ann.Epoch == epoch {
			f.PID = d.ann.Audio
		}
		return f, group, nil
	}
	f.Kind = tsframes.KindVideo
	f.Key = subject == d.subj.Key
	f.DTS = pts
	if headerValue(h, HeaderDTS) != "" {
		if f.DTS, err = headerInt(h, HeaderDTS); err != nil {
			return tsframes.Frame{}, nil, err
		}
	}
	if d.ann != nil && d.ann.Epoch == epoch {
		f.PID = d.ann.Video
	}
	return f, nil, nil
}

// derivedVideo reports whether a's video track is a derived one (made by a
// transcoding stage, docs/transcoding.md).
func derivedVideo(a *Announcement) bool {
	t, ok := a.Track(a.Video)
	return ok && t.DerivedFrom != 0
}

// keep reports whether the decoder delivers m, and sets its video PID. When
// the announced video track is derived, its H.264 frames (Whepcast-Derived)
// are the video played and the source's H.264 frames are left out; else
// the reverse (the source's H.264 are played, derived ones left out; so
// without the epoch's announcement). Other codecs (H.265 of a source whose
// H.264 rendition is derived) and audio are always delivered. With
// sourceVideo, the video delivered is the source's, whatever is played.
func (d *decoder) keep(m *Message) bool {
	f := &m.Frame
	if f.Kind != tsframes.KindVideo {
		return true
	}
	var played bool
	var video tsframes.Track
	if d.ann != nil && d.ann.Epoch == m.Epoch {
		video, _ = d.ann.Track(d.ann.Video)
		played = video.DerivedFrom != 0
	}
	if !m.Derived && played {
		f.PID = video.DerivedFrom
	}
	if d.sourceVideo {
		return !m.Derived
	}
	if f.Codec != tsframes.CodecH264 {
		return !m.Derived
	}
	if m.Derived != played {
		return false
	}
	if d.videoKey {
		if !f.Key {
			return false
		}
		d.videoKey = false
	}
	return true
}

func parsePart(v string) (i, n int, err error) {
	a, b, ok := strings.Cut(v, "/")
	if ok {
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil && n >= 2 && n <= MaxParts && i >= 2 && i <= n {
			return i, n, nil
		}
	}
	return 0, 0, fmt.Errorf("bad %s %q", HeaderPart, v)
}

// headerValue returns the first value of header k (case-sensitive, as NATS
// headers are).
func headerValue(h nats.Header, k string) string { return h.Get(k) }

func headerUint(h nats.Header, k string) (uint64, error) {
	v := headerValue(h, k)
	if v == "" {
		return 0, fmt.Errorf("%w %s", errMissingHeader, k)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s %q", k, v)
	}
	return n, nil
}

func headerInt(h nats.Header, k string) (int64, error) {
	v := headerValue(h, k)
	if v == "" {
		return 0, fmt.Errorf("%w %s", errMissingHeader, k)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s %q", k, v)
	}
	return n, nil
}

// parseAudioGroup reads Whepcast-Sizes and Whepcast-Durs; nil when the
// message carries one packet.
func parseAudioGroup(h nats.Header) (*audioGroup, error) {
	sv, dv := headerValue(h, HeaderSizes), headerValue(h, HeaderDurs)
	if sv == "" && dv == "" {
		return nil, nil
	}
	ss, ds := strings.Split(sv, ","), strings.Split(dv, ",")
	if len(ss) != len(ds) || len(ss) < 2 || len(ss) > MaxAudioGroup {
		return nil, fmt.Errorf("bad %s %q / %s %q: 2 to %d packets, as many sizes as durations",
			HeaderSizes, sv, HeaderDurs, dv, MaxAudioGroup)
	}
	g := &audioGroup{sizes: make([]int, len(ss)), durs: make([]int64, len(ds))}
	for i := range ss {
		n, err1 := strconv.Atoi(ss[i])
		d, err2 := strconv.ParseInt(ds[i], 10, 64)
		if err1 != nil || err2 != nil || n < 1 || n > MaxFrameSize || d < 1 || d > 1<<32 {
			return nil, fmt.Errorf("bad packet %d in %s %q / %s %q", i+1, HeaderSizes, sv, HeaderDurs, dv)
		}
		g.sizes[i], g.durs[i] = n, d
	}
	return g, nil
}

// Frames appends to out the frames m carries: m itself, or one Message per
// packet of an audio message carrying several (each with m's Seq, Epoch and
// Published; PTS the first's plus the durations before it). It fails when
// the packet sizes do not add up to the payload.
func (m Message) Frames(out []Message) ([]Message, error) {
	g := m.group
	if g == nil {
		return append(out, m), nil
	}
	total := 0
	for _, n := range g.sizes {
		total += n
	}
	if total != len(m.Frame.Data) {
		return out, fmt.Errorf("seq %d: %s add up to %d bytes, payload has %d", m.Seq, HeaderSizes, total, len(m.Frame.Data))
	}
	pts, off := m.Frame.PTS, 0
	for i, n := range g.sizes {
		p := m
		p.group = nil
		p.Frame.PTS, p.Frame.DTS, p.Frame.Duration = pts, pts, g.durs[i]
		p.Frame.Data = m.Frame.Data[off : off+n : off+n]
		p.Frame.More = i < len(g.sizes)-1
		out = append(out, p)
		pts += g.durs[i]
		off += n
	}
	return out, nil
}
