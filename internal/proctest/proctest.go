// Package proctest builds and runs binaries in a test. Run runs one to its
// end (usage, exit codes). Start runs a whepcast binary in the background
// and follows its JSON log (--log-format json on stderr): wait for a record,
// then stop the process with SIGTERM and check it said goodbye and exited
// with status 0. Launch runs any binary (a whepcast one with its text log,
// ffmpeg) in the background and keeps its output, which is logged when the
// test fails; its cleanup stops it with SIGTERM. Every wait is bounded by a
// context or a timeout; the cleanups kill what is still running.
package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// StopTimeout is how long a process gets to exit after SIGTERM
	// (Terminate, Launch's cleanup) before it is killed.
	StopTimeout = 15 * time.Second
	// logTail is how much of a process's output a failed test shows.
	logTail = 16 << 10
	// LogsEnv, when set in the environment, makes Launch's cleanup log the
	// output of passing tests too.
	LogsEnv = "WHEPCAST_TEST_LOGS"
)

// Proc is a running binary.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  buffer // stdout and stderr
	// lines carries the JSON records of stderr (Start only); it is closed
	// once the process has exited.
	lines chan map[string]any
	quit  chan struct{} // closed by the cleanup: records are dropped
	done  chan struct{} // closed once the process has exited
	err   error         // Wait's result, set before done is closed
}

// Start starts bin with args (it should include --log-format json) and
// env appended to the test process's environment. ctx ending kills it.
func Start(t *testing.T, ctx context.Context, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	p := newProc(filepath.Base(bin), cmd)
	p.lines = make(chan map[string]any, 64)
	cmd.Stdout = &p.out
	cmd.Stderr = &recordWriter{p: p}
	p.start(t)
	t.Cleanup(func() {
		close(p.quit)
		p.Kill()
	})
	return p
}

// Cmd is a process for Launch.
type Cmd struct {
	Name string // in messages; default: the base name of Bin
	Bin  string
	Args []string
	Env  []string // appended to the test process's environment
	Dir  string   // working directory; default: the test's
}

// Launch starts c with its stdout and stderr kept. Its cleanup stops it
// (Terminate) and logs the tail of its output when the test failed or
// LogsEnv is set.
func Launch(t *testing.T, c Cmd) *Proc {
	t.Helper()
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Env = append(cmd.Environ(), c.Env...)
	cmd.Dir = c.Dir
	name := c.Name
	if name == "" {
		name = filepath.Base(c.Bin)
	}
	p := newProc(name, cmd)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	p.start(t)
	t.Cleanup(func() {
		_ = p.Terminate(t)
		if t.Failed() || os.Getenv(LogsEnv) != "" {
			t.Logf("%s output (tail):\n%s", name, tail(p.Output(), logTail))
		}
	})
	return p
}

func newProc(name string, cmd *exec.Cmd) *Proc {
	return &Proc{name: name, cmd: cmd, quit: make(chan struct{}), done: make(chan struct{})}
}

func (p *Proc) start(t *testing.T) {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait() // after stdout and stderr are copied
		if p.lines != nil {
			close(p.lines)
		}
		close(p.done)
	}()
}

// PID returns the process's id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Name returns the process's name in messages.
func (p *Proc) Name() string { return p.name }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns how the process ended (exec.Cmd.Wait's error; nil for status
// 0); it is valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process wrote so far (stdout and stderr).
func (p *Proc) Output() string { return p.out.String() }

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
	for rec := range p.lines { // until the process has exited
		if rec["msg"] == goodbye {
			said = true
		}
	}
	if err := p.Err(); err != nil {
		t.Fatalf("%s exit after SIGTERM: %v", p.name, err)
	}
	if !said {
		t.Fatalf("%s: no %q log record", p.name, goodbye)
	}
}

// Terminate sends SIGTERM (unless the process has exited) and waits for the
// exit, killing the process (and failing the test) when it does not exit
// within StopTimeout. It returns how the process ended (nil for status 0).
func (p *Proc) Terminate(t *testing.T) error {
	t.Helper()
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		t.Errorf("%s did not exit within %v of SIGTERM: killed", p.name, StopTimeout)
		p.Kill()
	}
	return p.err
}

// Kill ends the process with SIGKILL (unless it has exited) and waits for
// it.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// WaitHTTP polls GET url every 50 ms until it answers 200 with body want;
// the test fails when the process exits first or ctx ends.
func (p *Proc) WaitHTTP(t *testing.T, ctx context.Context, url, want string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		code, body, err := Get(ctx, url)
		if err == nil && code == http.StatusOK && body == want {
			return
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before GET %s answered 200 %q", p.name, p.err, url, want)
		case <-ctx.Done():
			t.Fatalf("GET %s did not answer 200 %q in time; last: %s", url, want, last)
		case <-tick.C:
		}
	}
}

// getTimeout bounds one request of Get.
const getTimeout = 5 * time.Second

// Get GETs url without keep-alive, within 5 s and ctx, and returns the
// status and the body (its first MiB).
func Get(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, getTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// FreePort returns a port of 127.0.0.1 that was free a moment ago, for
// network "tcp" or "udp", to pass to a process.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	t.Fatalf("proctest: FreePort of network %q", network)
	return 0
}

// buildTimeout bounds Build.
const buildTimeout = 2 * time.Minute

// Build compiles the main package in the current directory (a command's
// own tests run there) into a temporary directory and returns the binary.
func Build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
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

// buffer is a bytes.Buffer safe for a writing process and a reading test.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(s []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(s)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recordWriter is the stderr of a Start process: kept in the output, and
// each line that is a JSON object is passed on as a record (until the
// cleanup; a test that does not read blocks the process meanwhile).
type recordWriter struct {
	p       *Proc
	partial []byte
}

func (w *recordWriter) Write(s []byte) (int, error) {
	_, _ = w.p.out.Write(s)
	w.partial = append(w.partial, s...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		w.partial = w.partial[i+1:]
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		select {
		case w.p.lines <- rec:
		case <-w.p.quit:
		}
	}
	return len(s), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
