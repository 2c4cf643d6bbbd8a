package proctest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds each test.
const testTimeout = 10 * time.Second

func TestWaitAndStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	// A process that logs a start record with a field, then a goodbye on
	// SIGTERM, and exits 0.
	script := `trap 'echo "{\"msg\":\"bye\"}" >&2; exit 0' TERM
echo 'not json' >&2
echo "{\"msg\":\"up\",\"addr\":\"$WHERE\"}" >&2
while :; do sleep 0.05; done`
	p := Start(t, ctx, "/bin/sh", []string{"WHERE=127.0.0.1:9"}, "-c", script)
	if got := p.Wait(t, ctx, "up")["addr"]; got != "127.0.0.1:9" {
		t.Fatalf("addr = %v, want the environment's value", got)
	}
	p.Stop(t, "bye")
	if out := p.Output(); !strings.Contains(out, "not json") {
		t.Errorf("output %q lacks the line that is not JSON", out)
	}
}

func TestRunExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	out, errOut, code := Run(t, ctx, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errOut != "err\n" || code != 3 {
		t.Fatalf("got %q %q %d, want \"out\\n\" \"err\\n\" 3", out, errOut, code)
	}
	if _, _, code := Run(t, ctx, "/bin/sh", "-c", "true"); code != 0 {
		t.Fatalf("true: exit %d", code)
	}
}

// TestLaunchTerminate: a launched process keeps its output, in its working
// directory, and exits with SIGTERM's status.
func TestLaunchTerminate(t *testing.T) {
	dir := t.TempDir()
	p := Launch(t, Cmd{Name: "sleeper", Bin: "/bin/sh", Dir: dir, Env: []string{"WORD=hello"},
		Args: []string{"-c", `echo "$WORD from $(pwd)"; echo err >&2; trap 'exit 7' TERM; while :; do sleep 0.05; done`}})
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(p.Output(), "err") {
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("output %q", p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Exited() {
		t.Fatal("exited early")
	}
	err := p.Terminate(t)
	if !p.Exited() || err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("Terminate = %v, want exit status 7", err)
	}
	if want := "hello from " + dir; !strings.Contains(p.Output(), want) {
		t.Errorf("output %q, want %q", p.Output(), want)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Terminate")
	}
}

// TestKill: a process that ignores SIGTERM is killed.
func TestKill(t *testing.T) {
	p := Launch(t, Cmd{Bin: "/bin/sh", Args: []string{"-c", `trap '' TERM; while :; do sleep 0.05; done`}})
	p.Kill()
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Err = %v, want killed", err)
	}
}

// TestWaitHTTP waits for a body, and fails fast when the process exits
// first (checked with a process that exits at once and a server that never
// answers the body).
func TestWaitHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok\n") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p := Launch(t, Cmd{Bin: "/bin/sh", Args: []string{"-c", "while :; do sleep 0.05; done"}})
	p.WaitHTTP(t, ctx, "http://"+ln.Addr().String()+"/", "ok\n")

	port := FreePort(t, "tcp")
	if udp := FreePort(t, "udp"); port <= 0 || udp <= 0 {
		t.Fatalf("ports %d %d", port, udp)
	}
}
