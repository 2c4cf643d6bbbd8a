package whip

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// fakeKeyframeRequests is a KeyframeRequests of a test: it keeps the
// subscribers by stream and tells the stopped ones.
type fakeKeyframeRequests struct {
	mu      sync.Mutex
	fns     map[string]func()
	stopped chan string
}

func (f *fakeKeyframeRequests) subscribe(stream string, fn func()) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fns == nil {
		f.fns = map[string]func(){}
	}
	f.fns[stream] = fn
	return func() {
		f.mu.Lock()
		delete(f.fns, stream)
		f.mu.Unlock()
		f.stopped <- stream
	}, nil
}

// ask sends a viewer's request for stream.
func (f *fakeKeyframeRequests) ask(t *testing.T, stream string) {
	t.Helper()
	f.mu.Lock()
	fn := f.fns[stream]
	f.mu.Unlock()
	if fn == nil {
		t.Fatalf("no publication listens to the keyframe requests of %s", stream)
	}
	fn()
}

func keyframes(frames []tsframes.Frame) int {
	n := 0
	for _, f := range frames {
		if f.Kind == tsframes.KindVideo && f.Key {
			n++
		}
	}
	return n
}

// TestViewersKeyframeRequestSendsAPLI: a publisher that sends a keyframe
// only when asked (no keyframe interval, as browsers) gets a PLI when a
// viewer asks for a keyframe of its stream, and its keyframe is published
// at once; the publication stops listening when it ends.
func TestViewersKeyframeRequestSendsAPLI(t *testing.T) {
	video := tstest.Demux(t, tstest.Read(t, "video.ts")).Kind(tsframes.KindVideo)
	if !video[0].Key || video[1].Key {
		t.Fatal("video.ts does not start with a keyframe and a delta frame")
	}
	var deltas [][]byte
	for _, f := range video[1:] {
		if f.Key {
			break
		}
		deltas = append(deltas, f.Data)
	}
	reqs := &fakeKeyframeRequests{stopped: make(chan string, 4)}
	s := newTestServer(t, func(c *Config) {
		c.KeyframeInterval = -1 // only the first keyframe and the viewers' requests ask
		c.KeyframeRequests = reqs.subscribe
	})
	p := piontest.NewPublisher(t, nil)
	loc := publish(t, p, s.url+"/whip/cam1", "")
	src := p.StartPLISource(t, video[0].Data, deltas)

	// The publication asks for its first keyframe itself.
	pub := s.rec.Opened(t, testTimeout)
	pub.WaitFrames(t, 1, testTimeout)
	if f := pub.Frames()[0]; f.Kind != tsframes.KindVideo || !f.Key {
		t.Fatalf("first frame published: %v key=%v, want a keyframe", f.Kind, f.Key)
	}

	plis, keys := src.PLIs.Load(), keyframes(pub.Frames())
	asked := time.Now()
	reqs.ask(t, "cam1")
	src.WaitPLIs(t, plis+1, 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for keyframes(pub.Frames()) <= keys {
		if time.Now().After(deadline) {
			t.Fatalf("no keyframe published within 2 s of a viewer's request (%d PLIs received, %d keyframes sent)",
				src.PLIs.Load(), src.Keyframes.Load())
		}
		pub.WaitFrames(t, len(pub.Frames())+1, time.Until(deadline))
	}
	t.Logf("keyframe published %s after the viewer's request", time.Since(asked).Round(time.Millisecond))

	if resp, body := request(t, http.MethodDelete, s.url+loc, "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	pub.WaitEnded(t, testTimeout)
	select {
	case stream := <-reqs.stopped:
		if stream != "cam1" {
			t.Fatalf("the subscription of %q stopped, want cam1's", stream)
		}
	case <-time.After(testTimeout):
		t.Fatal("the publication ended and still listens to keyframe requests")
	}
}
