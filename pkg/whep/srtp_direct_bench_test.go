package whep

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/pkg/relay"
)

// benchTrack is a minimal webrtc.TrackLocal that keeps the WriteStream it
// is bound to, as the relay's tracks do.
type benchTrack struct {
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter
}

func (t *benchTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) {
			t.ssrc, t.pt, t.writer = uint32(ctx.SSRC()), uint8(c.PayloadType), ctx.WriteStream()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrCodecNotFound
}
func (t *benchTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (t *benchTrack) ID() string                            { return "video" }
func (t *benchTrack) RID() string                           { return "" }
func (t *benchTrack) StreamID() string                      { return "bench" }
func (t *benchTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeVideo }

// BenchmarkFramePath measures one video access unit (8 packets of 1188
// bytes of payload and one of 505, a 2 Mb/s 30 fps frame) sent to one
// viewer per operation, through a session's PeerConnection as whep builds
// it (the relay's sender-report interceptor and the first-packet hook, UDP
// batching with GSO), to a pion player on loopback: "pion" through pion's
// write path (SRTP session, mux, candidate pair, then the batch), "direct"
// with Config.DirectSRTP. thread-cpu-ns/frame is the CPU time of the
// sending thread alone (the kernel's UDP send included, not the player's
// decryption on other threads), steadier than ns/op on a shared machine;
// user-ns/frame and sys-ns/frame split it into our code and pion's, and the
// kernel's.
func BenchmarkFramePath(b *testing.B) {
	payloads := make([][]byte, 9)
	for i := range payloads {
		n := 1188
		if i == len(payloads)-1 {
			n = 505
		}
		payloads[i] = make([]byte, n)
		payloads[i][0] = 0x7c // an FU-A, whatever its content
	}
	for _, mode := range []string{"pion", "direct"} {
		b.Run(mode, func(b *testing.B) {
			cfg := Config{ICEUDPAddr: "127.0.0.1:0", UDPGSO: true, ICEDisconnectedTimeout: 5 * time.Second, ICEFailedTimeout: 25 * time.Second}
			logger := slog.New(slog.DiscardHandler)
			n, err := newICENet(cfg, logger)
			if err != nil {
				b.Fatal(err)
			}
			defer n.close()
			m := &webrtc.MediaEngine{}
			if err := m.RegisterDefaultCodecs(); err != nil {
				b.Fatal(err)
			}
			ir := &interceptor.Registry{}
			var direct *directSRTP
			if mode == "direct" {
				direct = newDirectSRTP(logger)
				ir.Add(direct)
			}
			if err := relay.RegisterInterceptors(m, ir); err != nil {
				b.Fatal(err)
			}
			ir.Add(firstPacketFactory{onFirst: func() {}})
			pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir),
				webrtc.WithSettingEngine(n.settings)).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			up := make(chan struct{})
			pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
				if s == webrtc.PeerConnectionStateConnected {
					close(up)
				}
			})
			tr := &benchTrack{}
			snd, err := pc.AddTrack(tr)
			if err != nil {
				b.Fatal(err)
			}
			go func() { // drain RTCP, as the relay does
				buf := make([]byte, 1500)
				for {
					if _, _, err := snd.Read(buf); err != nil {
						return
					}
				}
			}()
			pb := newPathBatch(n.batches)
			pb.follow(snd.Transport().ICETransport())
			if direct != nil {
				direct.useBatch(pb)
			}
			player := piontest.RecvOnly(b, nil, webrtc.RTPCodecTypeVideo)
			defer player.Close()
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: piontest.Offer(b, player)}); err != nil {
				b.Fatal(err)
			}
			ans, err := pc.CreateAnswer(nil)
			if err != nil {
				b.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(pc)
			if err := pc.SetLocalDescription(ans); err != nil {
				b.Fatal(err)
			}
			<-gathered
			piontest.Answer(b, player, pc.LocalDescription().SDP)
			select {
			case <-up:
			case <-time.After(20 * time.Second):
				b.Fatal("not connected")
			}
			if direct != nil {
				direct.start(pc)
				if !direct.on.Load() {
					b.Fatal("direct SRTP did not start")
				}
			}
			if pb.current() == nil || pb.current().conn == nil {
				b.Fatal("no direct UDP path")
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			h := rtp.Header{Version: 2, PayloadType: tr.pt, SSRC: tr.ssrc}
			var seq uint16
			b.SetBytes(int64(9*1188 + 505))
			b.ReportAllocs()
			b.ResetTimer()
			user0, sys0 := threadCPU()
			for i := 0; i < b.N; i++ {
				h.Timestamp = uint32(i) * 3000
				batched := pb.Begin()
				for j, p := range payloads {
					h.SequenceNumber = seq
					h.Marker = j == len(payloads)-1
					seq++
					if _, err := tr.writer.WriteRTP(&h, p); err != nil {
						b.Fatal(err)
					}
				}
				if batched {
					pb.Flush()
				}
			}
			user1, sys1 := threadCPU()
			b.StopTimer()
			if user, sys := user1-user0, sys1-sys0; user+sys > 0 {
				b.ReportMetric(float64((user+sys).Nanoseconds())/float64(b.N), "thread-cpu-ns/frame")
				b.ReportMetric(float64(user.Nanoseconds())/float64(b.N), "user-ns/frame")
				b.ReportMetric(float64(sys.Nanoseconds())/float64(b.N), "sys-ns/frame")
			}
		})
	}
}
