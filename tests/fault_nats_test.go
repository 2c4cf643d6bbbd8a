//go:build external

package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/broker"
	"github.com/whepcast/whepcast/pkg/bus"
)

// TestFaultNATSServerKilled crashes (SIGKILL) the server that leads the
// media stream, in a 3-node cluster with 3 replicas, while a viewer plays:
// playback goes on on the same PeerConnection, the broker counts its publish
// errors and its publication carries on, and every message JetStream
// acknowledged is in the stream, as published.
func TestFaultNATSServerKilled(t *testing.T) {
	whepLeakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), clusterTestTimeout)
	defer cancel()
	cluster := startNATSCluster(t, ctx, natstest.Config{})
	// One observer per server: whichever server dies, the others saw
	// every publish and every acknowledgement.
	var observers []*busObserver
	for i := range cluster.Len() {
		observers = append(observers, observeBus(t, cluster.ClientURL(i), "cam"))
	}
	url := whepNode(t, nodeConn(t, "--nats-url", cluster.URL()), nil)
	b := startBroker(t, ctx, broker.Options{}, "--nats-url", cluster.URL(), "--replicas", "3", "--max-age", "5m")
	brokerURL := "http://" + b.IngestAddr().String()
	ingest := liveIngest(t, b, "cam")
	v := playStream(t, ctx, url, "cam")
	js := testJS(t, cluster.URL(), nats.MaxReconnects(-1))
	checkReplicated(t, ctx, js, "MEDIA_cam", 3)
	info := streamInfo(t, ctx, js, "MEDIA_cam")
	victim := cluster.Index(info.Cluster.Leader)
	if victim < 0 {
		t.Fatalf("stream leader %q", info.Cluster.Leader)
	}
	v.waitPackets(t, ctx, mimeH264, v.count(mimeH264)+30)
	if got := whepMetric(t, brokerURL, `whepcast_publish_errors_total{stream="cam"}`); got > 0 {
		t.Fatalf("%v publish errors before the fault", got)
	}

	brokerServer := b.Conn().ConnectedServerName()
	if err := cluster.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("killed %s, the leader of MEDIA_cam (the broker was connected to %s)", cluster.Name(victim), brokerServer)

	// JetStream elects a new leader for the stream, and for the meta
	// group when the victim led it (consumers are created through it).
	var streamElected, metaElected time.Duration
	whepWait(t, ctx, "new stream and meta leaders", func() bool {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if streamElected == 0 {
			if s, err := js.Stream(rctx, "MEDIA_cam"); err == nil {
				if info, err := s.Info(rctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != cluster.Name(victim) {
					streamElected = time.Since(killed)
				}
			}
		}
		if metaElected == 0 {
			if l, err := cluster.MetaLeader(rctx, (victim+1)%cluster.Len()); err == nil && l != "" && l != cluster.Name(victim) {
				metaElected = time.Since(killed)
			}
		}
		return streamElected > 0 && metaElected > 0
	})
	elected := max(streamElected, metaElected)
	t.Logf("FIGURE nats_stream_leader_election_ms=%d", streamElected.Milliseconds())
	t.Logf("FIGURE nats_meta_leader_election_ms=%d", metaElected.Milliseconds())

	// Playback goes on: 3 s more of video on the same PeerConnection.
	v.waitPacketsAfter(t, ctx, mimeH264, killed, 90)
	v.waitPacketsAfter(t, ctx, mimeOpus, killed, 100)
	// Frames JetStream never stored (no leader) are missing: the
	// timestamps jump forward, but never back, nor twice the same frame.
	pkts := v.packets(mimeH264)
	video := checkContinuity(t, track{name: "video", maxStep: 90000 * 60, lossy: true}, pkts)
	audio := checkContinuity(t, track{name: "audio", audio: true, maxStep: 48000 * 60, lossy: true}, v.packets(mimeOpus))
	t.Logf("packets lost on loopback: video %d of %d (%d more retransmitted, %d resent again), audio %d of %d", video.lost, video.packets, video.recovered, video.resent, audio.lost, audio.packets)
	t.Logf("FIGURE nats_failover_video_gap_ms=%d", video.maxPause.Milliseconds())
	// Publishing resumes as soon as JetStream has its leaders again:
	// within the publisher's stall timeout (2 s), plus the time a node
	// takes to notice that its consumer is gone (two missed 1 s
	// heartbeats) and create another.
	if resumed := video.pauseEnd.Sub(killed); resumed > elected+5*time.Second {
		t.Fatalf("video resumed %v after the kill, %v after the new leaders were elected", resumed, resumed-elected)
	}
	// The broker counted its failed publishes and went on publishing in the
	// same publication.
	whepWait(t, ctx, "publish errors counted", func() bool {
		return whepMetric(t, brokerURL, `whepcast_publish_errors_total{stream="cam"}`) > 0
	})
	if got := whepMetric(t, brokerURL, `whepcast_ingest_publications{stream="cam"}`); got != 1 || ingest.Exited() {
		t.Fatalf("live publications = %v, ffmpeg exited: %v", got, ingest.Exited())
	}
	t.Logf("publish errors: %v", whepMetric(t, brokerURL, `whepcast_publish_errors_total{stream="cam"}`))

	// End the ingest (its publisher flushes) and bring the server back.
	_ = ingest.Terminate(t)
	whepWait(t, ctx, "the publication to end", func() bool {
		return whepMetric(t, brokerURL, `whepcast_ingest_publications{stream="cam"}`) == 0
	})
	if err := cluster.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	checkReplicated(t, ctx, js, "MEDIA_cam", 3)

	// Every acknowledged message is stored as it was published.
	acked := whepMetric(t, brokerURL, `whepcast_publish_latency_seconds_count{stream="cam"}`)
	pubs, acks := mergeObservations(observers)
	if float64(len(acks)) < acked {
		t.Fatalf("the observers saw %d acknowledgements, the broker counted %v", len(acks), acked)
	}
	conn, err := nats.Connect(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frames, after := 0, 0
	for reply, seq := range acks {
		p, ok := pubs[reply]
		if !ok {
			t.Fatalf("acknowledgement of seq %d (%s) for a publish no observer saw", seq, reply)
		}
		if strings.HasSuffix(p.subject, ".tracks") {
			continue // rolled up by the next announcement
		}
		got, err := storedMessage(ctx, conn, "MEDIA_cam", seq)
		if err != nil {
			t.Fatalf("acknowledged %s (pts %s) at seq %d: %v", p.subject, p.pts, seq, err)
		}
		seen := p.seen
		p.seen = time.Time{}
		if got != p {
			t.Fatalf("seq %d: stored %+v, acknowledged %+v", seq, got, p)
		}
		frames++
		if seen.After(killed) {
			after++
		}
	}
	t.Logf("verified %d acknowledged frame messages (%d published after the kill); the broker counted %v acks", frames, after, acked)
	if after == 0 {
		t.Fatal("no frame published after the kill was acknowledged")
	}

	// What JetStream holds stays decodable: where video frames are
	// missing, the next one stored is a keyframe. The publisher breaks the
	// video when JetStream stops acknowledging, and resumes it at a
	// keyframe that JetStream acknowledged. (Frames in flight at the kill
	// may still be stored by the new leader: they continue their GOP
	// without a gap.)
	info = streamInfo(t, ctx, js, "MEDIA_cam")
	var last busMsg
	var lastPTS int64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := storedMessage(ctx, conn, "MEDIA_cam", seq)
		if err != nil || (m.subject != "media.cam.v.key" && m.subject != "media.cam.v.delta") {
			continue // deleted (rolled-up announcements), or not video
		}
		pts, err := strconv.ParseInt(m.pts, 10, 64)
		if err != nil {
			t.Fatalf("seq %d: pts %q", seq, m.pts)
		}
		if last.subject != "" && m.epoch == last.epoch && pts-lastPTS > 2*3000 && m.subject != "media.cam.v.key" {
			t.Fatalf("seq %d: a delta (pts %d) stored %d ms of video after the frame before it: its references are missing",
				seq, pts, (pts-lastPTS)/90)
		}
		last, lastPTS = m, pts
	}
}

// busMsg is what identifies a published media message.
type busMsg struct {
	subject, epoch, pts string
	sum                 [sha256.Size]byte
	seen                time.Time // zero in stored messages
}

// busObserver records, on one server, the publishes of a media stream
// (with their reply subjects) and the JetStream acknowledgements sent to
// those reply subjects.
type busObserver struct {
	mu   sync.Mutex
	pubs map[string]busMsg // by reply subject
	acks map[string]uint64 // reply subject -> stream sequence
}

func observeBus(t *testing.T, url, stream string) *busObserver {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	o := &busObserver{pubs: map[string]busMsg{}, acks: map[string]uint64{}}
	subj, _ := bus.SubjectsFor(stream)
	if _, err := nc.Subscribe(subj.All, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		msg := busMsg{subject: m.Subject, epoch: m.Header.Get(bus.HeaderEpoch), pts: m.Header.Get(bus.HeaderPTS), sum: sha256.Sum256(m.Data), seen: time.Now()}
		o.mu.Lock()
		if _, ok := o.pubs[m.Reply]; !ok { // a retried publish keeps its first sighting
			o.pubs[m.Reply] = msg
		}
		o.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(nats.InboxPrefix+">", func(m *nats.Msg) {
		if m.Reply != "" || len(m.Data) == 0 || m.Data[0] != '{' {
			return
		}
		var ack struct {
			Stream string `json:"stream"`
			Seq    uint64 `json:"seq"`
		}
		if json.Unmarshal(m.Data, &ack) == nil && ack.Stream == subj.Stream && ack.Seq > 0 {
			o.mu.Lock()
			o.acks[m.Subject] = ack.Seq
			o.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return o
}

// mergeObservations returns the union of what the observers saw.
func mergeObservations(obs []*busObserver) (map[string]busMsg, map[string]uint64) {
	pubs, acks := map[string]busMsg{}, map[string]uint64{}
	for _, o := range obs {
		o.mu.Lock()
		for k, v := range o.pubs {
			if p, ok := pubs[k]; !ok || v.seen.Before(p.seen) {
				pubs[k] = v
			}
		}
		for k, v := range o.acks {
			acks[k] = v
		}
		o.mu.Unlock()
	}
	return pubs, acks
}

// storedMessage reads message seq of a JetStream stream from its leader
// ($JS.API.STREAM.MSG.GET, not a direct get, which a lagging replica may
// answer).
func storedMessage(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (busMsg, error) {
	req, _ := json.Marshal(map[string]uint64{"seq": seq})
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return busMsg{}, err
	}
	var r struct {
		Message *struct {
			Subject string `json:"subject"`
			Header  []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return busMsg{}, err
	}
	if r.Error != nil || r.Message == nil {
		return busMsg{}, fmt.Errorf("not stored: %s", resp.Data)
	}
	h, err := parseHeaders(r.Message.Header)
	if err != nil {
		return busMsg{}, err
	}
	return busMsg{subject: r.Message.Subject, epoch: h.Get(bus.HeaderEpoch), pts: h.Get(bus.HeaderPTS), sum: sha256.Sum256(r.Message.Data)}, nil
}

// parseHeaders decodes a NATS header block ("NATS/1.0\r\nK: V\r\n...").
func parseHeaders(b []byte) (nats.Header, error) {
	h := nats.Header{}
	lines := bytes.Split(b, []byte("\r\n"))
	if len(lines) == 0 || !bytes.HasPrefix(lines[0], []byte("NATS/1.0")) {
		return nil, errors.New("bad header block")
	}
	for _, l := range lines[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok {
			h.Add(string(k), strings.TrimSpace(string(v)))
		}
	}
	return h, nil
}
