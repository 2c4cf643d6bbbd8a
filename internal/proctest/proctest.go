// Package proctest builds and runs a whepcast binary in a test: Run runs it
// to its end (usage, exit codes); Start runs it in the background and
// follows its JSON log (--log-format json on stderr): wait for a record,
// then stop the process with SIGTERM and check it said goodbye and exited
// with status 0.
// Every wait is bounded by the test's context; the cleanup kills the
// process if the test ends first.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Proc is a running binary.
type Proc struct {
	cmd   *exec.Cmd
	name  string
	lines chan map[string]any // the JSON records of stderr; closed at EOF
}

// Start starts bin with args (it should include --log-format json) and
// env appended to the test process's environment.
func Start(t *testing.T, ctx context.Context, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	p := &Proc{cmd: cmd, name: bin, lines: make(chan map[string]any, 64)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				p.lines <- rec
			}
		}
	}()
	return p
}

// Wait returns the first record whose msg is msg; the test fails when the
// process exits first or ctx ends.
func (p *Proc) Wait(t *testing.T, ctx context.Context, msg string) map[string]any {
	t.Helper()
	for {
		select {
		case rec, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before logging %q", p.name, msg)
			}
			if rec["msg"] == msg {
				return rec
			}
		case <-ctx.Done():
			t.Fatalf("%s did not log %q: %v", p.name, msg, ctx.Err())
		}
	}
}

// Stop sends SIGTERM, reads the log to its end and fails the test unless
// a record's msg is goodbye and the process exits with status 0.
func (p *Proc) Stop(t *testing.T, goodbye string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	said := false
	for rec := range p.lines { // until the process closes stderr
		if rec["msg"] == goodbye {
			said = true
		}
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("%s exit after SIGTERM: %v", p.name, err)
	}
	if !said {
		t.Fatalf("%s: no %q log record", p.name, goodbye)
	}
}

// buildTimeout bounds Build.
const buildTimeout = 2 * time.Minute

// Build compiles the main package in the current directory (a command's
// own tests run there) into a temporary directory and returns the binary.
func Build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Run runs bin with args to its end and returns its stdout, its stderr and
// its exit code (the test fails when it cannot run at all).
func Run(t *testing.T, ctx context.Context, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errOut.String(), code
}
