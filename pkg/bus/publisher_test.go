package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/embedded"
	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// publishAV announces and publishes every frame of av.ts and returns the
// frames the bus carries (those of the selected PIDs), in order.
func publishAV(t testing.TB, ctx context.Context, p *Publisher, av *tstest.Demuxed) []tsframes.Frame {
	t.Helper()
	if err := p.Announce(ctx, av.Announcements[0]); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	ann := NewAnnouncement("x", 0, av.Announcements[0])
	var carried []tsframes.Frame
	for _, f := range av.Frames {
		if err := p.Publish(ctx, f); err != nil {
			t.Fatalf("Publish(pid %d pts %d): %v", f.PID, f.PTS, err)
		}
		if f.PID == ann.Video || f.PID == ann.Audio {
			carried = append(carried, f)
		}
	}
	return carried
}

func TestPublishSubscribeAV(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	av := avFrames(t)
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv)
	raw := natstest.Connect(t, srv)

	// A plain NATS subscriber sees what `nats sub 'media.cam1.>'` shows.
	rawMsgs := make(chan *nats.Msg, 4096)
	rawSub, err := raw.ChanSubscribe("media.cam1.>", rawMsgs)
	if err != nil {
		t.Fatal(err)
	}
	defer rawSub.Unsubscribe()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}

	var acks, ackErrs atomic.Int64
	p := newPublisher(t, ctx, nc, "cam1", PublisherConfig{OnAck: func(d time.Duration, err error) {
		if err != nil {
			ackErrs.Add(1)
			return
		}
		if d <= 0 {
			ackErrs.Add(1)
		}
		acks.Add(1)
	}})
	carried := publishAV(t, ctx, p, av)
	var wantKeys int
	for _, f := range carried {
		if f.Key {
			wantKeys++
		}
	}
	if wantKeys == 0 || len(carried) < 100 {
		t.Fatalf("av.ts gave %d frames with %d keyframes on the selected PIDs", len(carried), wantKeys)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st := p.Stats()
	// One announcement by Announce, one before each keyframe; the audio
	// packets of a PES (ffmpeg: 5) share one message.
	wantMsgs := uint64(1 + wantKeys)
	for _, f := range carried {
		if !f.More {
			wantMsgs++
		}
	}
	if wantMsgs > uint64(len(carried)) {
		t.Fatalf("%d messages for %d frames: audio packets were not grouped", wantMsgs, len(carried))
	}
	if st.Frames != uint64(len(carried)) || st.Messages != wantMsgs || st.Acked != wantMsgs-1 ||
		st.Errors != 0 || st.Dropped != 0 || st.InFlight != 0 {
		t.Fatalf("stats = %+v, want %d frames, %d messages (%d acked async), no errors", st, len(carried), wantMsgs, wantMsgs-1)
	}
	if acks.Load() != int64(wantMsgs-1) || ackErrs.Load() != 0 {
		t.Fatalf("OnAck: %d acks, %d errors; want %d acks", acks.Load(), ackErrs.Load(), wantMsgs-1)
	}

	// Read the whole stream back.
	c := newCollector()
	s := subscribe(t, ctx, nc, "cam1", SubscribeOptions{FromSeq: 1}, c)
	msgs := c.waitFor(t, ctx, "all frames", func(m []Message) bool { return countFrames(m) >= len(carried) })
	s.Close()

	ann := NewAnnouncement("cam1", p.Epoch(), av.Announcements[0])
	var got []Message
	var tracks []Message
	for _, m := range msgs {
		if m.Epoch != p.Epoch() {
			t.Fatalf("message seq %d has epoch %d, want %d", m.Seq, m.Epoch, p.Epoch())
		}
		if m.IsFrame() {
			got = append(got, m)
		} else {
			tracks = append(tracks, m)
		}
	}
	if len(got) != len(carried) {
		t.Fatalf("got %d frames, want %d", len(got), len(carried))
	}
	for i, m := range got {
		w := carried[i]
		f := m.Frame
		if !bytes.Equal(f.Data, w.Data) || f.PTS != w.PTS || f.DTS != w.DTS || f.Key != w.Key ||
			f.Kind != w.Kind || f.Codec != w.Codec || f.PID != w.PID || f.More != w.More {
			t.Fatalf("frame %d (seq %d): got pid %d %s %s pts %d dts %d dur %d key %v %d bytes; want pid %d %s %s pts %d dts %d dur %d key %v %d bytes",
				i, m.Seq, f.PID, f.Kind, f.Codec, f.PTS, f.DTS, f.Duration, f.Key, len(f.Data),
				w.PID, w.Kind, w.Codec, w.PTS, w.DTS, w.Duration, w.Key, len(w.Data))
		}
		if w.Kind == tsframes.KindAudio && f.Duration != w.Duration {
			t.Fatalf("audio frame %d: duration %d, want %d", i, f.Duration, w.Duration)
		}
		// The packets of a grouped audio message share its sequence.
		if prev := got[max(i, 1)-1]; i > 0 && (m.Seq < prev.Seq || m.Seq == prev.Seq && !prev.Frame.More) {
			t.Fatalf("frame %d: seq %d after %d (more %v)", i, m.Seq, prev.Seq, prev.Frame.More)
		}
	}
	// Rollup keeps one announcement: the one before the last keyframe.
	if len(tracks) != 1 {
		t.Fatalf("got %d announcements, want 1 (rollup)", len(tracks))
	}
	if a := tracks[0].Tracks; a.Stream != "cam1" || a.Epoch != p.Epoch() || a.Video != ann.Video ||
		a.Audio != ann.Audio || len(a.Tracks) != len(ann.Tracks) {
		t.Fatalf("announcement = %+v, want %+v", *a, ann)
	}

	// Raw messages: headers as `nats sub --headers-only` shows them.
	epoch := strconv.FormatUint(p.Epoch(), 10)
	var rawFrames int
	for range wantMsgs {
		var m *nats.Msg
		select {
		case m = <-rawMsgs:
		case <-ctx.Done():
			t.Fatalf("raw subscriber: %v after %d frames", ctx.Err(), rawFrames)
		}
		if got := m.Header.Get(HeaderEpoch); got != epoch {
			t.Fatalf("%s: %s = %q, want %q", m.Subject, HeaderEpoch, got, epoch)
		}
		switch m.Subject {
		case "media.cam1.tracks":
			if m.Header.Get("Nats-Rollup") != "sub" || m.Header.Get("Nats-TTL") != "never" {
				t.Fatalf("tracks headers = %v, want Nats-Rollup: sub, Nats-TTL: never", m.Header)
			}
			var a Announcement
			if err := json.Unmarshal(m.Data, &a); err != nil || a.Epoch != p.Epoch() {
				t.Fatalf("tracks payload %q: %v", m.Data, err)
			}
			continue
		}
		w := carried[rawFrames]
		rawFrames++
		data := w.Data
		var sizes, durs []string
		dur := w.Duration
		if w.Kind == tsframes.KindAudio && w.More {
			sizes, durs = []string{strconv.Itoa(len(w.Data))}, []string{strconv.FormatInt(w.Duration, 10)}
			data = bytes.Clone(w.Data)
			for more := true; more; rawFrames++ {
				n := carried[rawFrames]
				more = n.More
				data = append(data, n.Data...)
				dur += n.Duration
				sizes, durs = append(sizes, strconv.Itoa(len(n.Data))), append(durs, strconv.FormatInt(n.Duration, 10))
			}
		}
		want := map[string]string{
			HeaderCodec: string(w.Codec),
			HeaderPTS:   strconv.FormatInt(w.PTS, 10),
		}
		if sizes != nil {
			want[HeaderSizes] = strings.Join(sizes, ",")
			want[HeaderDurs] = strings.Join(durs, ",")
		}
		wantSubject := "media.cam1.a"
		if w.Kind == tsframes.KindVideo {
			want[HeaderDTS] = strconv.FormatInt(w.DTS, 10)
			wantSubject = "media.cam1.v.delta"
			if w.Key {
				want[HeaderKey] = "1"
				wantSubject = "media.cam1.v.key"
			}
		} else {
			want[HeaderDur] = strconv.FormatInt(dur, 10)
		}
		if m.Subject != wantSubject {
			t.Fatalf("frame %d on %s, want %s", rawFrames-1, m.Subject, wantSubject)
		}
		for k, v := range want {
			if got := m.Header.Get(k); got != v {
				t.Fatalf("frame %d: %s = %q, want %q (headers %v)", rawFrames-1, k, got, v, m.Header)
			}
		}
		for _, k := range []string{HeaderKey, HeaderDTS, HeaderDur, HeaderParts, HeaderPart, HeaderSizes, HeaderDurs} {
			if _, ok := want[k]; !ok && m.Header.Get(k) != "" {
				t.Fatalf("frame %d: unexpected header %s: %q", rawFrames-1, k, m.Header.Get(k))
			}
		}
		if !bytes.Equal(m.Data, data) {
			t.Fatalf("frame %d: raw payload differs", rawFrames-1)
		}
	}
}

func TestLargeFrameSplit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener, MaxPayload: 64 << 10})
	nc := natstest.Connect(t, srv)
	js := newJS(t, nc)
	p := newPublisher(t, ctx, nc, "big", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 300_000)
	for i := range key {
		key[i] = byte(rng.UintN(256))
	}
	delta := []byte{0, 0, 0, 1, 0x41, 0x9a}
	if err := p.Publish(ctx, videoFrame(9000, true, key)); err != nil {
		t.Fatalf("Publish keyframe: %v", err)
	}
	if err := p.Publish(ctx, videoFrame(12000, false, delta)); err != nil {
		t.Fatalf("Publish delta: %v", err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	maxData := 64<<10 - HeaderRoom
	wantParts := (len(key) + maxData - 1) / maxData // 5

	seq, err := LatestKeyframe(ctx, js, "big")
	if err != nil {
		t.Fatalf("LatestKeyframe: %v", err)
	}
	st, err := js.Stream(ctx, StreamPrefix+"big")
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if first.Subject != "media.big.v.key" || first.Header.Get(HeaderParts) != strconv.Itoa(wantParts) {
		t.Fatalf("seq %d: %s with %s=%q, want the first part on media.big.v.key with %d parts",
			seq, first.Subject, HeaderParts, first.Header.Get(HeaderParts), wantParts)
	}
	for i := 2; i <= wantParts; i++ {
		m, err := st.GetMsg(ctx, seq+uint64(i-1))
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "media.big.part" || m.Header.Get(HeaderPart) != strconv.Itoa(i)+"/"+strconv.Itoa(wantParts) {
			t.Fatalf("seq %d: %s %s=%q, want part %d/%d", m.Sequence, m.Subject, HeaderPart, m.Header.Get(HeaderPart), i, wantParts)
		}
		if len(m.Data)+len(m.Header) > 64<<10 {
			t.Fatalf("part %d has %d bytes", i, len(m.Data))
		}
	}

	c := newCollector()
	subscribe(t, ctx, nc, "big", SubscribeOptions{}, c)
	msgs := c.waitFor(t, ctx, "keyframe and delta", func(m []Message) bool { return countFrames(m) >= 2 })
	if len(msgs) != 2 || !msgs[0].IsFrame() {
		t.Fatalf("got %d messages, want keyframe then delta", len(msgs))
	}
	k := msgs[0]
	if k.Seq != seq || !k.Frame.Key || k.Frame.PTS != 9000 || k.Frame.PID != 256 || !bytes.Equal(k.Frame.Data, key) {
		t.Fatalf("keyframe: seq %d key %v pts %d pid %d %d bytes; want seq %d, 300000 identical bytes",
			k.Seq, k.Frame.Key, k.Frame.PTS, k.Frame.PID, len(k.Frame.Data), seq)
	}
	d := msgs[1]
	if d.Seq != seq+uint64(wantParts) || d.Frame.Key || !bytes.Equal(d.Frame.Data, delta) {
		t.Fatalf("delta: seq %d key %v %x", d.Seq, d.Frame.Key, d.Frame.Data)
	}
}

func TestSecondPublisherNewEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	w, err := WatchCatalog(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	changes, cancelChanges := w.Subscribe()
	defer cancelChanges()

	p1 := newPublisher(t, ctx, nc, "cam", PublisherConfig{})
	if err := p1.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p1.Publish(ctx, videoFrame(1000, true, []byte{0, 0, 0, 1, 0x65, 1})); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	subscribe(t, ctx, nc, "cam", SubscribeOptions{FromSeq: 1}, c)
	c.waitFor(t, ctx, "first epoch keyframe", func(m []Message) bool { return countFrames(m) == 1 })

	p2 := newPublisher(t, ctx, nc, "cam", PublisherConfig{})
	if p2.Epoch() <= p1.Epoch() {
		t.Fatalf("second epoch %d not greater than first %d", p2.Epoch(), p1.Epoch())
	}
	if err := p2.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p2.Publish(ctx, videoFrame(500, true, []byte{0, 0, 0, 1, 0x65, 2})); err != nil {
		t.Fatal(err)
	}
	msgs := c.waitFor(t, ctx, "second epoch keyframe", func(m []Message) bool { return countFrames(m) == 2 })
	var sawNewTracks bool
	for _, m := range msgs {
		if m.Tracks != nil && m.Tracks.Epoch == p2.Epoch() && m.Epoch == p2.Epoch() {
			sawNewTracks = true
		}
		if m.IsFrame() && m.Frame.PTS == 500 && (m.Epoch != p2.Epoch() || !sawNewTracks) {
			t.Fatalf("second epoch frame: epoch %d, announcement seen %v", m.Epoch, sawNewTracks)
		}
	}

	// The first publisher closing must not end (nor overwrite) the entry
	// of the second.
	if err := p1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := OpenCatalog(ctx, newJS(t, nc), 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cat.Get(ctx, "cam")
	if err != nil {
		t.Fatal(err)
	}
	if e.Epoch != p2.Epoch() || e.State != StateLive {
		t.Fatalf("catalog after first publisher closed: epoch %d state %s, want %d live", e.Epoch, e.State, p2.Epoch())
	}
	if err := p2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-changes:
			if e.Epoch == p2.Epoch() && e.State == StateEnded {
				return
			}
		case <-ctx.Done():
			t.Fatal("no ended entry for the second epoch")
		}
	}
}

func TestAnnouncementSurvivesAgeOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	p := newPublisher(t, ctx, nc, "short", PublisherConfig{Stream: StreamConfig{MaxAge: time.Second, Storage: StorageMemory}})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := p.Publish(ctx, videoFrame(int64(i)*3000, i == 0, []byte{0, 0, 0, 1, 0x65, byte(i)})); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, audioFrame(int64(i)*1800, []byte{0xfc, byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "MEDIA_short")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 11 {
		t.Fatalf("stream holds %d messages, want 11 (1 announcement, 10 frames)", n)
	}
	pollUntil(t, ctx, "frames to age out", func() bool {
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	if _, err := LatestKeyframe(ctx, js, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestKeyframe after age-out: %v, want ErrNotFound", err)
	}
	m, err := LatestAnnouncement(ctx, js, "short")
	if err != nil {
		t.Fatalf("announcement aged out: %v", err)
	}
	if m.Epoch != p.Epoch() || m.Tracks.Video != 256 || m.Tracks.Audio != 257 || len(m.Tracks.Tracks) != 2 {
		t.Fatalf("announcement = %+v", m.Tracks)
	}
}

func TestBackPressureDropsWithinStallTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(time.Hour))
	const stall = 200 * time.Millisecond
	p := newPublisher(t, ctx, nc, "bp", PublisherConfig{MaxInFlight: 2, StallTimeout: stall})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, audioFrame(0, []byte{0xfc, 0})); err != nil {
		t.Fatal(err)
	}

	reconnecting := nc.StatusChanged(nats.RECONNECTING)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnecting:
	case <-ctx.Done():
		t.Fatal("connection did not notice the shutdown")
	}

	var drops int
	for i := 1; i <= 10; i++ {
		start := time.Now()
		err := p.Publish(ctx, audioFrame(int64(i)*1800, []byte{0xfc, byte(i)}))
		took := time.Since(start)
		if took > stall+time.Second {
			t.Fatalf("Publish %d blocked %v, StallTimeout is %v", i, took, stall)
		}
		if err != nil {
			if !errors.Is(err, ErrDropped) {
				t.Fatalf("Publish %d: %v, want ErrDropped", i, err)
			}
			if took < stall-20*time.Millisecond {
				t.Fatalf("Publish %d dropped after %v, before StallTimeout %v", i, took, stall)
			}
			drops++
			if drops == 2 {
				break
			}
		}
	}
	if drops == 0 {
		t.Fatal("no frame dropped with a full window and no server")
	}
	if got := p.Stats().Dropped; got != uint64(drops) {
		t.Fatalf("Stats().Dropped = %d, want %d", got, drops)
	}
	// Shutdown is bounded too.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(cctx); err == nil {
		t.Fatal("Shutdown flushed messages to a dead server")
	}
	if took := time.Since(start); took > 300*time.Millisecond+closeGrace+time.Second {
		t.Fatalf("Shutdown took %v", took)
	}
	if err := p.Publish(ctx, audioFrame(0, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Shutdown: %v, want ErrClosed", err)
	}
	nc.RemoveStatusListener(reconnecting)
}

func TestPublishDropsDeltasUntilKeyframe(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The smallest max payload: parts carry HeaderRoom bytes each.
	srv := natstest.Embedded(t, embedded.Config{Port: embedded.NoListener, MaxPayload: 2 * HeaderRoom})
	nc := natstest.Connect(t, srv)
	p := newPublisher(t, ctx, nc, "dk", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	// A frame beyond MaxParts parts is dropped: deltas must wait.
	huge := make([]byte, HeaderRoom*MaxParts+1)
	if err := p.Publish(ctx, videoFrame(0, true, huge)); !errors.Is(err, ErrDropped) {
		t.Fatalf("oversized frame: %v, want ErrDropped", err)
	}
	if err := p.Publish(ctx, videoFrame(3000, false, []byte{1})); !errors.Is(err, ErrDropped) {
		t.Fatalf("delta after a drop: %v, want ErrDropped", err)
	}
	if err := p.Publish(ctx, audioFrame(0, []byte{0xfc})); err != nil {
		t.Fatalf("audio is not held back: %v", err)
	}
	if err := p.Publish(ctx, videoFrame(6000, true, []byte{2})); err != nil {
		t.Fatalf("keyframe: %v", err)
	}
	if err := p.Publish(ctx, videoFrame(9000, false, []byte{3})); err != nil {
		t.Fatalf("delta after keyframe: %v", err)
	}
	// Frames of other PIDs are ignored.
	if err := p.Publish(ctx, tsframes.Frame{PID: 999, Data: []byte{4}}); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Dropped != 2 || st.Frames != 3 {
		t.Fatalf("stats = %+v, want 2 dropped, 3 frames", st)
	}
}

func TestPublisherConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  PublisherConfig
		want string
	}{
		{PublisherConfig{}, ""},
		{PublisherConfig{Stream: StreamConfig{Storage: "disk"}}, `stream storage "disk"`},
		{PublisherConfig{MaxInFlight: -1}, "max in-flight -1"},
		{PublisherConfig{StallTimeout: -time.Second}, "stall timeout -1s"},
		{PublisherConfig{CatalogRefresh: time.Minute}, "catalog refresh 1m0s"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tc.cfg, err)
			}
			continue
		}
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("Validate(%+v) = %v, want an error mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

func TestInvalidNamesCreateNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	js := newJS(t, nc)
	for _, name := range []string{"", "a.b", "a b", "cam>", "*", "ü", string(make([]byte, 65))} {
		if _, err := NewPublisher(ctx, nc, name, PublisherConfig{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("NewPublisher(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := Subscribe(ctx, nc, name, SubscribeOptions{}, func(Message) {}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Subscribe(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := LatestKeyframe(ctx, js, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("LatestKeyframe(%q): %v, want ErrInvalidName", name, err)
		}
	}
	// Invalid configuration is rejected before anything is created, too.
	if _, err := NewPublisher(ctx, nc, "ok", PublisherConfig{Stream: StreamConfig{Storage: "tape"}}); err == nil {
		t.Fatal("NewPublisher accepted storage tape")
	}
	var names []string
	l := js.StreamNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	if len(names) != 0 {
		t.Fatalf("streams created for invalid input: %v", names)
	}
}

func TestNewPublisherStorageChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	newPublisher(t, ctx, nc, "s", PublisherConfig{Stream: StreamConfig{Storage: StorageMemory}})
	// Retention may change on an existing stream.
	p := newPublisher(t, ctx, nc, "s", PublisherConfig{Stream: StreamConfig{Storage: StorageMemory, MaxAge: time.Minute}})
	st, err := newJS(t, nc).Stream(ctx, "MEDIA_s")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxAge != time.Minute || cfg.Storage != jetstream.MemoryStorage || !cfg.AllowDirect || !cfg.AllowRollup ||
		!cfg.AllowMsgTTL || cfg.Discard != jetstream.DiscardOld || cfg.MaxBytes != -1 ||
		len(cfg.Subjects) != 1 || cfg.Subjects[0] != "media.s.>" {
		t.Fatalf("stream config = %+v", cfg)
	}
	_ = p
	// Storage may not.
	if _, err := NewPublisher(ctx, nc, "s", PublisherConfig{}); err == nil {
		t.Fatal("NewPublisher changed the storage of an existing stream")
	}
}

// BenchmarkPublish measures publishing the frames of av.ts to an embedded
// server over an in-process connection, acknowledgements included.
func BenchmarkPublish(b *testing.B) {
	av := avFrames(b)
	srv := natstest.Embedded(b, embedded.Config{Port: embedded.NoListener})
	nc := natstest.Connect(b, srv)
	ctx := b.Context()
	p := newPublisher(b, ctx, nc, "bench", PublisherConfig{Stream: StreamConfig{Storage: StorageMemory, MaxAge: 10 * time.Second}})
	if err := p.Announce(ctx, av.Announcements[0]); err != nil {
		b.Fatal(err)
	}
	var frameBytes int
	for _, f := range av.Frames {
		frameBytes += len(f.Data)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, f := range av.Frames {
			if err := p.Publish(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Wait for the acks so the measure covers storage.
	pollUntil(b, ctx, "acks", func() bool { return p.Stats().InFlight == 0 })
	b.StopTimer()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*len(av.Frames))/sec, "frames/s")
	b.ReportMetric(float64(b.N*frameBytes)/sec/1e6, "MB/s")
	if st := p.Stats(); st.Dropped != 0 || st.Errors != 0 {
		b.Fatalf("stats = %+v", st)
	}
}

func TestPublishOnClosedConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	p := newPublisher(t, ctx, nc, "gone", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	err := p.Publish(ctx, audioFrame(0, []byte{0xfc}))
	if !errors.Is(err, ErrDropped) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Publish on a closed connection: %v, want ErrDropped and ErrConnectionClosed", err)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Errors != 1 {
		t.Fatalf("stats = %+v, want 1 dropped, 1 error", st)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := p.Shutdown(cctx); err == nil {
		t.Fatal("Shutdown could not mark the entry ended, yet returned nil")
	}
}

// TestPublishAudioGroupEdges: the packets held for the end of their PES go
// out alone when a frame of another PID comes first, and as one message
// when the publisher shuts down within the PES; a group never exceeds
// MaxAudioGroup packets.
func TestPublishAudioGroupEdges(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc := natstest.EmbeddedConn(t)
	p := newPublisher(t, ctx, nc, "grp", PublisherConfig{})
	if err := p.Announce(ctx, h264Opus); err != nil {
		t.Fatal(err)
	}
	more := func(pts int64, b byte) tsframes.Frame {
		f := audioFrame(pts, []byte{0xfc, b})
		f.More = true
		return f
	}
	publish := func(fs ...tsframes.Frame) {
		t.Helper()
		for _, f := range fs {
			if err := p.Publish(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 1. Two held packets, then a video frame: the packets go out alone.
	publish(more(0, 1), more(1800, 2), videoFrame(3000, true, []byte{9}))
	// 2. MaxAudioGroup+3 packets of one PES: a full group, then the rest.
	for i := range MaxAudioGroup + 2 {
		publish(more(int64(10+i)*1800, byte(i)))
	}
	publish(audioFrame(int64(10+MaxAudioGroup+2)*1800, []byte{0xfc, 0xff}))
	// 3. Shut down within a PES: the held packets go out as one message.
	publish(more(100*1800, 1), more(101*1800, 2))
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	c := newCollector()
	subscribe(t, ctx, nc, "grp", SubscribeOptions{FromSeq: 1}, c)
	total := 2 + 1 + MaxAudioGroup + 3 + 2
	msgs := c.waitFor(t, ctx, "every frame", func(m []Message) bool { return countFrames(m) >= total })
	var audio []Message
	perSeq := map[uint64]int{}
	for _, m := range msgs {
		if m.IsFrame() && m.Frame.Kind == tsframes.KindAudio {
			audio = append(audio, m)
			perSeq[m.Seq]++
		}
	}
	var sizes []int
	for i, m := range audio {
		if i == 0 || m.Seq != audio[i-1].Seq {
			sizes = append(sizes, perSeq[m.Seq])
		}
	}
	want := []int{1, 1, MaxAudioGroup, 3, 2}
	if !slices.Equal(sizes, want) {
		t.Fatalf("audio messages carry %v packets, want %v", sizes, want)
	}
	for i := 1; i < len(audio); i++ {
		if audio[i].Frame.PTS <= audio[i-1].Frame.PTS {
			t.Fatalf("audio packet %d: pts %d after %d", i, audio[i].Frame.PTS, audio[i-1].Frame.PTS)
		}
	}
	if st := p.Stats(); st.Frames != uint64(total) || st.Dropped != 0 {
		t.Fatalf("stats %+v, want %d frames", st, total)
	}
}
