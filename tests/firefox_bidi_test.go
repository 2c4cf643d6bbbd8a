//go:build external

package tests

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// firefoxPath is Debian's Firefox ESR. The Firefox tests use this one only.
const firefoxPath = "/usr/bin/firefox-esr"

// firefoxInstall is the command that provides firefoxPath.
const firefoxInstall = "apt-get update && apt-get install -y firefox-esr"

// firefoxPrefs go into the fresh profile's user.js. Firefox applies the
// WebDriver BiDi "recommended" prefs itself (no updates, no telemetry, no
// first-run pages); these are the media ones a test needs.
var firefoxPrefs = map[string]string{
	// Allow loopback candidates, and real addresses rather than mDNS names
	// the server could not resolve. Debian's Firefox 153 still gathers on
	// the host's other interfaces only (media.peerconnection.ice.
	// force_interface=lo changes nothing): it reaches the node's 127.0.0.1
	// candidate from them and the node learns its address as
	// peer-reflexive; the traffic stays on the host.
	"media.peerconnection.ice.loopback":                 "true",
	"media.peerconnection.ice.obfuscate_host_addresses": "false",
	// Autoplay with sound, no prompt for devices.
	"media.autoplay.default":                     "0",
	"media.navigator.permission.disabled":        "true",
	"media.autoplay.block-webaudio":              "false",
	"media.gmp-gmpopenh264.autoupdate":           "false",
	"media.gmp-manager.updateEnabled":            "false",
	"browser.shell.checkDefaultBrowser":          "false",
	"datareporting.policy.firstRunURL":           `""`,
	"browser.aboutwelcome.enabled":               "false",
	"toolkit.telemetry.reportingpolicy.firstRun": "false",
}

// firefoxStartTimeout bounds the start of the browser up to its BiDi socket.
const firefoxStartTimeout = 30 * time.Second

// firefox is a headless Firefox driven over WebDriver BiDi (the WebSocket
// Firefox itself serves with --remote-debugging-port; no geckodriver).
type firefox struct {
	t       *testing.T
	bidi    *bidiConn
	context string // the top-level browsing context (the tab)
}

// startFirefox starts a fresh headless Firefox ESR with its own profile,
// opens a BiDi session and returns it; the page's console goes to the test
// log. The browser exits when the test ends. The test fails, with the
// command that installs it, when /usr/bin/firefox-esr is missing.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	if _, err := os.Stat(firefoxPath); err != nil {
		t.Fatalf("%s is missing (%v): install Debian's Firefox ESR with: %s", firefoxPath, err, firefoxInstall)
	}
	profile := t.TempDir()
	var userJS strings.Builder
	for k, v := range firefoxPrefs {
		fmt.Fprintf(&userJS, "user_pref(%q, %s);\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(userJS.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(firefoxPath, "--headless", "--no-remote", "--profile", profile,
		"--remote-debugging-port=0", "about:blank")
	// Firefox's content processes are its children: one process group, so
	// that a browser that does not close is killed whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "HOME="+profile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", firefoxPath, err)
	}
	logs := &firefoxLog{t: t}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		// The first line naming the BiDi socket gives its address; the
		// rest of stderr goes to the log at debug level only.
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "WebDriver BiDi listening on "); i >= 0 && !sent {
				addr <- strings.TrimSpace(line[i+len("WebDriver BiDi listening on "):])
				sent = true
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	var f *firefox
	t.Cleanup(func() {
		logs.stop()
		if f != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = f.bidi.call(ctx, "browser.close", struct{}{})
			cancel()
			f.bidi.close()
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("firefox did not exit 10 s after browser.close: killing its process group")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	var url string
	select {
	case url = <-addr:
	case <-exited:
		t.Fatalf("%s exited before its WebDriver BiDi socket was listening", firefoxPath)
	case <-time.After(firefoxStartTimeout):
		t.Fatalf("%s: no WebDriver BiDi socket within %v", firefoxPath, firefoxStartTimeout)
	}
	ctx, cancel := context.WithTimeout(t.Context(), firefoxStartTimeout)
	defer cancel()
	conn, err := dialBiDi(ctx, url+"/session", logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	f = &firefox{t: t, bidi: conn}
	if _, err := conn.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}); err != nil {
		t.Fatalf("session.new: %v", err)
	}
	if _, err := conn.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		t.Fatalf("session.subscribe: %v", err)
	}
	raw, err := conn.call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0})
	if err != nil {
		t.Fatalf("browsingContext.getTree: %v", err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(raw, &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("browsingContext.getTree answered %s (%v)", raw, err)
	}
	f.context = tree.Contexts[0].Context
	return f
}

// navigate loads url in the tab and waits until its load event.
func (f *firefox) navigate(ctx context.Context, url string) error {
	_, err := f.bidi.call(ctx, "browsingContext.navigate", map[string]any{
		"context": f.context, "url": url, "wait": "complete",
	})
	if err != nil {
		return fmt.Errorf("navigating to %s: %w", url, err)
	}
	return nil
}

// evalJSON evaluates a JavaScript expression in the page, awaiting it when
// it is a promise, and decodes its value, serialized with JSON.stringify,
// into a T.
func evalJSON[T any](ctx context.Context, f *firefox, expr string) (T, error) {
	var out T
	raw, err := f.bidi.call(ctx, "script.evaluate", map[string]any{
		"expression":      "(async () => JSON.stringify(await (" + expr + ")))()",
		"target":          map[string]any{"context": f.context},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return out, err
	}
	var res struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return out, fmt.Errorf("decoding script.evaluate's result %s: %w", raw, err)
	}
	if res.Type != "success" {
		return out, fmt.Errorf("evaluating %s: %s", expr, res.ExceptionDetails.Text)
	}
	if res.Result.Type != "string" {
		return out, fmt.Errorf("evaluating %s: the value is not JSON (%s)", expr, res.Result.Type)
	}
	if err := json.Unmarshal([]byte(res.Result.Value), &out); err != nil {
		return out, fmt.Errorf("decoding %s: %w", res.Result.Value, err)
	}
	return out, nil
}

// waitFirefoxJS waits, in the page, until the expression is truthy (checked
// every 50 ms inside the page), failing after timeout.
func waitFirefoxJS(ctx context.Context, f *firefox, timeout time.Duration, expr string) error {
	js := fmt.Sprintf(`new Promise((resolve) => {
		const end = performance.now() + %d;
		const check = () => {
			let ok = false;
			try { ok = !!(%s); } catch (e) { ok = false; }
			if (ok || performance.now() > end) { resolve(ok); return; }
			setTimeout(check, 50);
		};
		check();
	})`, timeout.Milliseconds(), expr)
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	ok, err := evalJSON[bool](ctx, f, js)
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", expr, err)
	}
	if !ok {
		return fmt.Errorf("waited %v for %s", timeout, expr)
	}
	return nil
}

// bidiConn is a WebDriver BiDi client: commands with ids over one
// WebSocket, answered by id; log.entryAdded events go to logf.
type bidiConn struct {
	ws   *wsConn
	logf func(format string, args ...any)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan bidiAnswer
	err     error // set when the reader stops
	done    chan struct{}
}

type bidiAnswer struct {
	result json.RawMessage
	err    error
}

func dialBiDi(ctx context.Context, url string, logf func(string, ...any)) (*bidiConn, error) {
	ws, err := dialWebSocket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	c := &bidiConn{ws: ws, logf: logf, pending: map[int64]chan bidiAnswer{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *bidiConn) read() {
	defer close(c.done)
	var err error
	for {
		var msg []byte
		msg, err = c.ws.readMessage()
		if err != nil {
			break
		}
		var m struct {
			Type    string          `json:"type"`
			ID      *int64          `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
			Method  string          `json:"method"`
			Params  struct {
				Level string `json:"level"`
				Text  string `json:"text"`
			} `json:"params"`
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		if m.Type == "event" {
			if m.Method == "log.entryAdded" {
				c.logf("console %s: %s", m.Params.Level, m.Params.Text)
			}
			continue
		}
		if m.ID == nil {
			continue
		}
		c.mu.Lock()
		ch := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if ch == nil {
			continue
		}
		if m.Type == "error" {
			ch <- bidiAnswer{err: fmt.Errorf("%s: %s", m.Error, m.Message)}
		} else {
			ch <- bidiAnswer{result: m.Result}
		}
	}
	c.mu.Lock()
	c.err = err
	for id, ch := range c.pending {
		ch <- bidiAnswer{err: fmt.Errorf("the BiDi connection ended: %w", err)}
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// call sends a command and waits for its answer or the end of ctx.
func (c *bidiConn) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	ch := make(chan bidiAnswer, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: the BiDi connection ended: %w", method, c.err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := c.ws.writeText(msg); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, fmt.Errorf("%s: %w", method, a.err)
		}
		return a.result, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close closes the socket and waits for the reader.
func (c *bidiConn) close() {
	_ = c.ws.conn.Close()
	<-c.done
}

// wsConn is the client side of a WebSocket (RFC 6455), as much as a BiDi
// client needs: text messages out (masked), text messages in (possibly
// fragmented), pings answered.
type wsConn struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
}

// wsMaxMessage bounds a message the client accepts.
const wsMaxMessage = 16 << 20

func dialWebSocket(ctx context.Context, url string) (*wsConn, error) {
	hostPath, ok := strings.CutPrefix(url, "ws://")
	if !ok {
		return nil, fmt.Errorf("%s is not a ws:// URL", url)
	}
	host, path, _ := strings.Cut(hostPath, "/")
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	key := base64.StdEncoding.EncodeToString(nonce)
	req := "GET /" + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		_ = conn.Close()
		return nil, err
	}
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("reading the handshake's answer: %w", err)
	}
	_ = res.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		_ = conn.Close()
		return nil, fmt.Errorf("handshake answered %s (Sec-WebSocket-Accept %q)", res.Status, res.Header.Get("Sec-WebSocket-Accept"))
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsConn{conn: conn, r: r}, nil
}

func (c *wsConn) writeText(p []byte) error {
	return c.writeFrame(0x1, p)
}

func (c *wsConn) writeFrame(opcode byte, p []byte) error {
	hdr := []byte{0x80 | opcode}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	frame := make([]byte, 0, len(hdr)+len(p))
	frame = append(frame, hdr...)
	for i, b := range p {
		frame = append(frame, b^mask[i%4])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(frame)
	return err
}

// readMessage returns the next text or binary message, answering pings on
// the way; a close frame ends it with io.EOF.
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(c.r, mask); err != nil {
				return nil, err
			}
		}
		if n > wsMaxMessage || uint64(len(msg))+n > wsMaxMessage {
			return nil, fmt.Errorf("a WebSocket message of more than %d bytes", wsMaxMessage)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8: // close
			_ = c.writeFrame(0x8, nil)
			return nil, io.EOF
		case 0x9: // ping
			if err := c.writeFrame(0xa, payload); err != nil {
				return nil, err
			}
			continue
		case 0xa: // pong
			continue
		case 0x0, 0x1, 0x2:
			msg = append(msg, payload...)
			if fin {
				return msg, nil
			}
		default:
			return nil, errors.New("a WebSocket frame with an unknown opcode")
		}
	}
}

// firefoxLog forwards the browser's console to t.Logf until the test's
// cleanup starts (t.Logf must not be called after the test ends).
type firefoxLog struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *firefoxLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("firefox: "+format, args...)
	}
}

func (l *firefoxLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
