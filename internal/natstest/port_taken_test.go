package natstest

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestStartRetriesATakenPort: an in-process server whose client port was
// taken before it listened stops (it does not end the test binary), and
// Start starts the cluster again on other ports.
func TestStartRetriesATakenPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	picks := 0
	c, err := Start(ctx, Config{InProcess: true, Servers: 1, Dir: t.TempDir(), pickPort: func() (int, error) {
		picks++
		if picks == 1 { // the first attempt's client port
			return taken, nil
		}
		return freePort()
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	if picks != 6 {
		t.Fatalf("%d ports picked, want 3 per attempt, 2 attempts", picks)
	}
	if c.ports[0].client == taken {
		t.Fatalf("the cluster runs on the taken port %d", taken)
	}
	if !c.servers[0].isRunning() {
		t.Fatal("the server of the second attempt is not running")
	}
}

func TestPortTaken(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{&net.OpError{Op: "listen", Err: errAddrInUse{}}, true},
	} {
		if got := portTaken(c.err); got != c.want {
			t.Errorf("portTaken(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

type errAddrInUse struct{}

func (errAddrInUse) Error() string { return "bind: address already in use" }
