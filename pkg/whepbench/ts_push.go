package whepbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// pushResult is the outcome of one push.
type pushResult struct {
	Bursts int   // bursts written
	Bytes  int64 // TS bytes written
	// MaxLate is the longest delay of a burst's write past its due time:
	// how far the pusher fell behind real time.
	MaxLate time.Duration
	Status  int    // the ingest's status (0 when none came)
	Body    string // first line of its body
}

// pushTarget is a PUT destination.
type pushTarget struct {
	addr    string // host:port
	path    string // request URI
	host    string // Host header
	token   string
	timeout time.Duration // bound on the final response (httpTimeout)
}

func newPushTarget(rawURL, token string) (pushTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return pushTarget{}, fmt.Errorf("%w: ingest URL %q: %w", ErrConfig, rawURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return pushTarget{}, fmt.Errorf("%w: ingest URL %q: want http://host:port/path", ErrConfig, rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return pushTarget{addr: addr, path: u.RequestURI(), host: u.Host, token: token, timeout: httpTimeout}, nil
}

// burstWrite is when the write of a burst began and when it returned.
type burstWrite struct{ start, end time.Time }

type response struct {
	status int
	body   string
	err    error
}

// push PUTs sched once in real time: burst i is written at start +
// sched.bursts[i].at, as one HTTP chunk on a connection of its own. When
// sent is not nil, sent[i] gets the times the write of burst i began (its
// first packet leaves) and returned (its last packet has left).
// Closing stop ends the body early (cleanly: the last chunk is sent and the
// response read). When ctx ends the connection is dropped and ctx's error
// returned. A response other than 200 (early or at the end) is ErrIngest.
func push(ctx context.Context, t pushTarget, sched *Schedule, start time.Time, sent []burstWrite, stop <-chan struct{}) (res pushResult, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrIngest, err)
	}
	// The connection is closed when push returns or when ctx ends; the
	// response reader ends with it and is waited for.
	unhook := context.AfterFunc(ctx, func() { _ = conn.Close() })
	respCh := make(chan response, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		respCh <- readResponse(conn)
	}()
	defer func() {
		unhook()
		_ = conn.Close()
		<-readerDone
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}()

	head := "PUT " + t.path + " HTTP/1.1\r\nHost: " + t.host + "\r\nUser-Agent: whep-bench\r\n" +
		"Content-Type: video/mp2t\r\nTransfer-Encoding: chunked\r\n"
	if t.token != "" {
		head += "Authorization: Bearer " + t.token + "\r\n"
	}
	if err := writeAll(conn, []byte(head+"\r\n")); err != nil {
		return res, earlyOr(respCh, err)
	}

	chunk := make([]byte, 0, 64<<10)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopped := false
	for i, b := range sched.bursts {
		due := start.Add(b.at)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				stopped = true
			case <-ctx.Done():
				return res, context.Cause(ctx)
			case r := <-respCh:
				return res, earlyResponse(r, &res)
			}
			if stopped {
				break
			}
		}
		data := sched.data[b.off:b.end]
		chunk = strconv.AppendInt(chunk[:0], int64(len(data)), 16)
		chunk = append(chunk, '\r', '\n')
		chunk = append(chunk, data...)
		chunk = append(chunk, '\r', '\n')
		began := time.Now()
		res.MaxLate = max(res.MaxLate, began.Sub(due))
		if err := writeAll(conn, chunk); err != nil {
			return res, earlyOr(respCh, err)
		}
		if sent != nil {
			sent[i] = burstWrite{start: began, end: time.Now()}
		}
		res.Bursts++
		res.Bytes += int64(len(data))
	}
	if err := writeAll(conn, []byte("0\r\n\r\n")); err != nil {
		return res, earlyOr(respCh, err)
	}
	timer.Reset(t.timeout)
	select {
	case r := <-respCh:
		if r.err != nil {
			return res, fmt.Errorf("%w: reading the response: %w", ErrIngest, r.err)
		}
		res.Status, res.Body = r.status, r.body
		if r.status != http.StatusOK {
			return res, fmt.Errorf("%w: status %d: %s", ErrIngest, r.status, r.body)
		}
		return res, nil
	case <-timer.C:
		return res, fmt.Errorf("%w: no response %v after the end of the body", ErrIngest, t.timeout)
	case <-ctx.Done():
		return res, context.Cause(ctx)
	}
}

func writeAll(conn net.Conn, b []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := conn.Write(b)
	return err
}

func readResponse(conn net.Conn) response {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return response{status: resp.StatusCode, body: firstLine(body)}
}

// earlyOr explains a failed write by the response the server sent before
// closing, when there is one.
func earlyOr(respCh <-chan response, werr error) error {
	select {
	case r := <-respCh:
		if r.err == nil {
			return fmt.Errorf("%w: status %d before the end of the body: %s", ErrIngest, r.status, r.body)
		}
	case <-time.After(100 * time.Millisecond):
	}
	return fmt.Errorf("%w: writing: %w", ErrIngest, werr)
}

func earlyResponse(r response, res *pushResult) error {
	if r.err != nil {
		return fmt.Errorf("%w: connection ended before the end of the body: %w", ErrIngest, r.err)
	}
	res.Status, res.Body = r.status, r.body
	return fmt.Errorf("%w: status %d before the end of the body: %s", ErrIngest, r.status, r.body)
}
