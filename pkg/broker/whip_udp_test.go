package broker

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/internal/piontest"
)

// TestWHIPUsesItsUDPPort: with --whip-udp-addr, a WHIP publisher's answer
// offers that one port only, and the publisher connects through it.
func TestWHIPUsesItsUDPPort(t *testing.T) {
	b := startBroker(t, testConfig(t, "--storage", "memory", "--whip-udp-addr", "127.0.0.1:0"), Options{})
	addrs := b.WHIPUDPAddrs()
	if len(addrs) != 1 {
		t.Fatalf("WHIP UDP addresses %v, want one", addrs)
	}
	port := strconv.Itoa(addrs[0].(*net.UDPAddr).Port)

	p := piontest.NewPublisher(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.IngestAddr().String()+"/whip/cam1",
		strings.NewReader(piontest.Offer(t, p.PC)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %q %v", resp.StatusCode, body, err)
	}
	answer := string(body)
	n := 0
	for line := range strings.Lines(answer) {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		n++
		if f := strings.Fields(line); len(f) < 6 || f[2] != "udp" || f[5] != port {
			t.Fatalf("answer candidate %q, want UDP on port %s only", strings.TrimSpace(line), port)
		}
	}
	if n == 0 {
		t.Fatalf("the answer has no candidate:\n%s", answer)
	}
	piontest.Answer(t, p.PC, answer)
	p.WaitConnected(t, testDeadline)
}
