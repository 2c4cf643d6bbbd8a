package proctest

import (
	"context"
	"testing"
	"time"
)

func TestWaitAndStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
}

func TestRunExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, errOut, code := Run(t, ctx, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errOut != "err\n" || code != 3 {
		t.Fatalf("got %q %q %d, want \"out\\n\" \"err\\n\" 3", out, errOut, code)
	}
	if _, _, code := Run(t, ctx, "/bin/sh", "-c", "true"); code != 0 {
		t.Fatalf("true: exit %d", code)
	}
}
