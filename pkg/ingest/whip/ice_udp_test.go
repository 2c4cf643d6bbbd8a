package whip

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/internal/piontest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestPublishersShareOneUDPPort: with an ICEUDP, every publisher's answer
// offers only the one port, and two publishers at once publish through it.
func TestPublishersShareOneUDPPort(t *testing.T) {
	u, err := ListenICEUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrs := u.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("bound %v, want one address", addrs)
	}
	port := strconv.Itoa(addrs[0].(*net.UDPAddr).Port)
	s := newTestServer(t, func(c *Config) {
		se := piontest.Loopback()
		u.Configure(&se)
		c.SettingEngine = &se
	})
	t.Cleanup(func() {
		_ = s.h.Close() // the publications end before their port closes
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := ListenICEUDP(addrs[0].String()); err == nil || !strings.Contains(err.Error(), addrs[0].String()) {
		t.Fatalf("binding the busy port again: %v, want an error naming it", err)
	}

	video := tstest.Demux(t, tstest.Read(t, "av.ts")).Frames[:90]
	for _, stream := range []string{"cam1", "cam2"} {
		p := piontest.NewPublisher(t, nil)
		resp, answer := request(t, http.MethodPost, s.url+"/whip/"+stream, "application/sdp", "", []byte(piontest.Offer(t, p.PC)))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", stream, resp.StatusCode, answer)
		}
		var candidates int
		for line := range strings.Lines(answer) {
			if !strings.HasPrefix(line, "a=candidate:") {
				continue
			}
			candidates++
			if f := strings.Fields(line); len(f) < 6 || f[2] != "udp" || f[5] != port {
				t.Fatalf("%s: answer candidate %q, want UDP on port %s only", stream, strings.TrimSpace(line), port)
			}
		}
		if candidates == 0 {
			t.Fatalf("%s: the answer has no candidate:\n%s", stream, answer)
		}
		piontest.Answer(t, p.PC, answer)
		p.WaitConnected(t, testTimeout)
		p.Send(t, video, 4)
	}
	for range 2 {
		pub := s.rec.Opened(t, testTimeout)
		pub.WaitFrames(t, 1, testTimeout)
		if f := pub.Frames()[0]; f.Kind != tsframes.KindVideo || !f.Key {
			t.Fatalf("first frame %v key=%v, want a keyframe", f.Kind, f.Key)
		}
	}
}
