package relay

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// benchFrames returns the video frames of av.ts and its announcement.
func benchFrames(b *testing.B) ([]tsframes.Frame, bus.Announcement) {
	events := readFixture(b, "av.ts")
	video, _ := framesOf(events)
	return video, busAnnouncement("bench", 1, events)
}

// BenchmarkForward measures an access unit going through a hub
// (packetization once, fan-out) to N viewers whose writer goroutines
// rewrite the headers and write every packet to a counting WriteStream.
// ns/viewer-packet, cpu-ns/viewer-packet (CPU time of every thread, steadier
// than wall time on a busy machine) and allocs/viewer-packet spread the
// whole cost over the packets the viewers wrote.
func BenchmarkForward(b *testing.B) {
	video, ann := benchFrames(b)
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			fb := newFakeBus()
			r, err := newRelay(Config{}, fb.subscribe, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			counters := make([]*counter, n)
			for i := range counters {
				v, err := r.Join(b.Context(), ann, Want{Video: true})
				if err != nil {
					b.Fatal(err)
				}
				defer v.Close()
				counters[i] = newCounter()
				bind(b, v.VideoTrack(), uint32(i+1), counters[i])
				v.Start()
			}
			// Packets per access unit, from one run of the packetizer.
			pkts := make([]int64, len(video))
			for i, f := range video {
				p, _, err := packetizeH264(f.Data, MaxPayload)
				if err != nil {
					b.Fatal(err)
				}
				pkts[i] = int64(len(p))
			}
			const batch = 64 // well within the viewers' queues
			var sent int64
			msg := bus.Message{Epoch: 1}
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				k := i % len(video)
				msg.Frame = video[k]
				msg.Frame.PTS += int64(i/len(video)) * 6 * 90000
				fb.send("bench", msg)
				sent += pkts[k]
				if (i+1)%batch == 0 || i == b.N-1 {
					for _, c := range counters {
						c.waitAtLeast(sent)
					}
				}
			}
			el, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			vp := float64(sent) * float64(n)
			b.ReportMetric(float64(el.Nanoseconds())/vp, "ns/viewer-packet")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/vp, "cpu-ns/viewer-packet")
			}
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/vp, "allocs/viewer-packet")
			b.ReportMetric(float64(sent)/float64(b.N), "packets/AU")
		})
	}
}

// BenchmarkViewerWrite measures the per-viewer path alone: one frame's
// headers rewritten and written by a viewer's track writer.
func BenchmarkViewerWrite(b *testing.B) {
	video, _ := benchFrames(b)
	payloads, _, err := packetizeH264(video[0].Data, MaxPayload)
	if err != nil {
		b.Fatal(err)
	}
	f := newFrame(true, true, 0, 0, 0, payloads, true)
	tr := newTrack(0, h264Capability(""), "bench")
	bind(b, tr, 1, newCounter())
	w := newTrackWriter(tr, newRetransmitBuffer(16), videoClockRate)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Keep the sequence numbers contiguous, as the hub does.
		for j := range f.pkts {
			f.pkts[j].seq = uint64(i*len(f.pkts) + j)
		}
		w.write(f)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(f.pkts)), "ns/viewer-packet")
}

// BenchmarkViewerLive measures a viewer's writer per live frame, delay
// sampling included: the video frames of av.ts, sampled as the hub samples
// them, written to a counting WriteStream.
func BenchmarkViewerLive(b *testing.B) {
	video, ann := benchFrames(b)
	r, err := newRelay(Config{}, newFakeBus().subscribe, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	v, err := r.Join(b.Context(), ann, Want{Video: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	bind(b, v.VideoTrack(), 1, newCounter())
	// Not started: the benchmark plays the writer goroutine.
	frames := make([]*frame, len(video))
	var seq uint64
	pkts, gopIndex := 0, 0
	for i, fr := range video {
		payloads, _, err := packetizeH264(fr.Data, MaxPayload)
		if err != nil {
			b.Fatal(err)
		}
		if fr.Key {
			gopIndex = 0
		} else {
			gopIndex++
		}
		f := newFrame(true, fr.Key, uint32(fr.PTS), gopIndex, seq, payloads, true)
		f.sampled = gopIndex%delaySampleEvery == 0
		f.recv = time.Since(v.hub.clock)
		frames[i] = f
		seq += uint64(len(payloads))
		pkts += len(payloads)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.writeLive(frames[i%len(frames)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())*float64(len(frames))/float64(b.N*pkts), "ns/viewer-packet")
}

// BenchmarkViewerMemory measures what a started viewer costs (heap and
// goroutine stack), with the default queue.
func BenchmarkViewerMemory(b *testing.B) {
	_, ann := benchFrames(b)
	const n = 1000
	for i := 0; i < b.N; i++ {
		fb := newFakeBus()
		r, err := newRelay(Config{}, fb.subscribe, nil)
		if err != nil {
			b.Fatal(err)
		}
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		viewers := make([]*Viewer, n)
		for j := range viewers {
			v, err := r.Join(b.Context(), ann, Want{Video: true, Audio: true})
			if err != nil {
				b.Fatal(err)
			}
			bind(b, v.VideoTrack(), uint32(j+1), newCounter())
			bind(b, v.AudioTrack(), uint32(j+1), newCounter())
			v.Start()
			viewers[j] = v
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "heap-B/viewer")
		b.ReportMetric(float64(ms1.StackInuse-ms0.StackInuse)/n, "stack-B/viewer")
		for _, v := range viewers {
			v.Close()
		}
		r.Close()
	}
}
