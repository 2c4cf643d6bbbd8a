package bus

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/whepcast/whepcast/pkg/tsframes"
)

// derivedAnn is the announcement of epoch 7 of stream c: source H.264 on
// 256, Opus on 257 and, when derived, the stage's H.264 rendition on 7937.
func derivedAnn(derived bool) Announcement {
	a := tsframes.Announcement{Tracks: []tsframes.Track{
		{PID: 256, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264, WebRTC: true},
		{PID: 257, Kind: tsframes.KindAudio, Codec: tsframes.CodecOpus, WebRTC: true},
	}}
	if derived {
		a.Tracks = append(a.Tracks, tsframes.Track{PID: 7937, Kind: tsframes.KindVideo, Codec: tsframes.CodecH264,
			WebRTC: true, DerivedFrom: 256})
	}
	return NewAnnouncement("c", 7, a)
}

func TestAnnouncementPrefersDerivedH264(t *testing.T) {
	if a := derivedAnn(true); a.Video != 7937 || a.Audio != 257 {
		t.Errorf("with a derived H.264 track: video %d audio %d, want 7937 and 257", a.Video, a.Audio)
	}
	if a := derivedAnn(false); a.Video != 256 {
		t.Errorf("without: video %d, want 256", a.Video)
	}
}

// TestDecoderPlaysAnnouncedVideo: the source's and the derived H.264 frames
// of one epoch are told apart by Whepcast-Derived. A reader gets the
// source's until the announcement makes the derived track the video, then
// the derived ones from their first keyframe; with sourceVideo it gets the
// source's throughout (with their PID), and audio always.
func TestDecoderPlaysAnnouncedVideo(t *testing.T) {
	subj := mustSubjects("c")
	src, der := newEncoder(subj, 7), newEncoder(subj, 7)
	der.derived = true
	type in struct {
		ann   *Announcement
		enc   encoder
		kind  tsframes.Kind
		key   bool
		label string
	}
	plain, withDerived := derivedAnn(false), derivedAnn(true)
	seqIn := []in{
		{ann: &plain},
		{enc: src, kind: tsframes.KindVideo, key: true, label: "s0"},
		{enc: der, kind: tsframes.KindVideo, key: true, label: "d0"}, // stray: not announced yet
		{enc: src, kind: tsframes.KindVideo, label: "s1"},
		{enc: src, kind: tsframes.KindAudio, label: "a0"},
		{ann: &withDerived},
		{enc: der, kind: tsframes.KindVideo, label: "d1"}, // a delta: waits for the key
		{enc: src, kind: tsframes.KindVideo, key: true, label: "s2"},
		{enc: der, kind: tsframes.KindVideo, key: true, label: "d2"},
		{enc: src, kind: tsframes.KindVideo, label: "s3"},
		{enc: der, kind: tsframes.KindVideo, label: "d3"},
		{enc: der, kind: tsframes.KindAudio, label: "a1"},
	}
	run := func(d *decoder) (labels []string, pids []uint16) {
		for i, m := range seqIn {
			var subject string
			var hdr map[string][]string
			var data []byte
			if m.ann != nil {
				b, err := json.Marshal(m.ann)
				if err != nil {
					t.Fatal(err)
				}
				msg := src.announcement(b)
				subject, hdr, data = msg.Subject, msg.Header, msg.Data
			} else {
				codec := tsframes.CodecH264
				if m.kind == tsframes.KindAudio {
					codec = tsframes.CodecOpus
				}
				f := tsframes.Frame{Kind: m.kind, Codec: codec, Key: m.key, PTS: int64(i) * 3000, DTS: int64(i) * 3000,
					Duration: 1800, Data: []byte(m.label)}
				msgs, err := m.enc.frame(m.kind == tsframes.KindVideo, []tsframes.Frame{f}, 1024)
				if err != nil {
					t.Fatal(err)
				}
				subject, hdr, data = msgs[0].Subject, msgs[0].Header, msgs[0].Data
				if got := msgs[0].Header.Get(HeaderDerived); (got == "1") != m.enc.derived {
					t.Fatalf("%s: %s %q", m.label, HeaderDerived, got)
				}
			}
			out, ok, err := d.push(uint64(i+1), subject, hdr, data)
			if err != nil {
				t.Fatalf("%s: %v", m.label, err)
			}
			if ok && out.IsFrame() {
				labels = append(labels, string(out.Frame.Data))
				if out.Frame.Kind == tsframes.KindVideo {
					pids = append(pids, out.Frame.PID)
				}
			}
		}
		return labels, pids
	}
	labels, pids := run(&decoder{subj: subj})
	if want := []string{"s0", "s1", "a0", "d2", "d3", "a1"}; !slices.Equal(labels, want) {
		t.Errorf("played: %v, want %v", labels, want)
	}
	if want := []uint16{256, 256, 7937, 7937}; !slices.Equal(pids, want) {
		t.Errorf("video PIDs %v, want %v", pids, want)
	}
	labels, pids = run(&decoder{subj: subj, sourceVideo: true})
	if want := []string{"s0", "s1", "a0", "s2", "s3", "a1"}; !slices.Equal(labels, want) {
		t.Errorf("source video: %v, want %v", labels, want)
	}
	if want := []uint16{256, 256, 256, 256}; !slices.Equal(pids, want) {
		t.Errorf("source video PIDs %v, want %v", pids, want)
	}
}
