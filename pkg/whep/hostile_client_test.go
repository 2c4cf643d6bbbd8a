package whep

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
)

// A client that completes ICE but never answers the server's DTLS
// handshake holds its session only until the connect timeout: then the
// session is closed, its viewer released, and the goroutines it started
// are gone.
func TestICEWithoutDTLSEndsSession(t *testing.T) {
	const connectTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ts := newTestServer(t, func(c *Config) { c.ConnectTimeout = connectTimeout })
	ts.catalog.set(liveEntry("cam", trackH264))
	baseline := runtime.NumGoroutine()

	// The client: a bare ICE agent on 127.0.0.1, no DTLS at all.
	agent, err := ice.NewAgent(&ice.AgentConfig{
		NetworkTypes:    []ice.NetworkType{ice.NetworkTypeUDP4},
		CandidateTypes:  []ice.CandidateType{ice.CandidateTypeHost},
		IncludeLoopback: true,
		IPFilter:        func(ip net.IP) bool { return ip.IsLoopback() },
	})
	if err != nil {
		t.Fatal(err)
	}
	agentClosed := false
	closeAgent := func() {
		if !agentClosed {
			agentClosed = true
			if err := agent.Close(); err != nil {
				t.Errorf("closing the ICE agent: %v", err)
			}
		}
	}
	defer closeAgent()
	gathered := make(chan struct{})
	if err := agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(gathered)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := agent.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("the ICE agent gathered nothing")
	}
	local, err := agent.GetLocalCandidates()
	if err != nil || len(local) == 0 {
		t.Fatalf("local candidates %v (%v)", local, err)
	}
	ufrag, pwd, err := agent.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	var cands strings.Builder
	for _, c := range local {
		cands.WriteString("a=candidate:" + c.Marshal() + "\r\n")
	}
	offer := strings.Replace(fixedOffer("video"), "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
		"a=ice-ufrag:"+ufrag+"\r\na=ice-pwd:"+pwd+"\r\n"+cands.String(), 1)

	began := time.Now()
	resp, answer := ts.post(t, ctx, "cam", offer, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %q", resp.StatusCode, answer)
	}
	var rufrag, rpwd string
	for _, line := range strings.Split(answer, "\r\n") {
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			rufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			rpwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			c, err := ice.UnmarshalCandidate(strings.TrimPrefix(line, "a="))
			if err != nil {
				t.Fatalf("answer candidate %q: %v", line, err)
			}
			if err := agent.AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	conn, err := agent.Dial(ctx, rufrag, rpwd)
	if err != nil {
		t.Fatalf("ICE with the server: %v", err)
	}
	// Read what the server sends (its DTLS handshake) and never answer.
	received := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 1500)
		for {
			m, err := conn.Read(buf)
			n += m
			if err != nil {
				received <- n
				return
			}
		}
	}()

	ts.waitSessions(t, ctx, 0)
	held := time.Since(began)
	if held < connectTimeout {
		t.Errorf("the session ended %v after the POST, before the connect timeout of %v", held, connectTimeout)
	}
	// The session leaves the list before it is counted (session.close).
	var failed float64
	waitFor(t, ctx, "the session counted as failed", func() bool {
		failed = metricValue(t, ts.reg, "whepcast_whep_sessions_failed_total", "reason", reasonConnectTimeout)
		return failed != -1
	})
	if failed != 1 {
		t.Errorf("failed{connect_timeout} = %v, want 1", failed)
	}
	if v := ts.media.all()[0]; v.isStarted() || !v.isClosed() {
		t.Errorf("viewer started %v closed %v, want never started and closed", v.isStarted(), v.isClosed())
	}
	closeAgent()
	if n := <-received; n == 0 {
		t.Error("the server sent nothing over the ICE connection (no DTLS handshake)")
	}
	// The session's goroutines (PeerConnection, DTLS retransmissions, ICE)
	// end with it; the test's keep-alive HTTP connection is closed first.
	ts.client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines 10 s after the session ended, %d before it:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	t.Logf("session held %v (connect timeout %v)", held.Round(time.Millisecond), connectTimeout)
}
