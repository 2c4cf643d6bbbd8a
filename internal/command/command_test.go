package command

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whepcast/whepcast/pkg/config"
)

func TestRunExitCodes(t *testing.T) {
	ran := false
	spec := Spec[config.Node]{
		Name: "whep-node",
		Load: config.LoadNode,
		Log:  func(c *config.Node) config.Log { return c.Log },
		Run: func(ctx context.Context, c *config.Node, _ *slog.Logger) error {
			ran = true
			if c.HTTPAddr == "fail:1" {
				return errors.New("boom")
			}
			return nil
		},
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		ran      bool
		out, err string
	}{
		{name: "help", args: []string{"--help"}, code: 0, out: "--http-addr"},
		{name: "bad config", args: []string{"--start", "sideways"}, code: 2, err: "whep-node: "},
		{name: "bad log level", args: []string{"--log-level", "loud"}, code: 2, err: "whep-node: "},
		{name: "ok", args: []string{"--http-addr", "127.0.0.1:0"}, code: 0, ran: true},
		{name: "work fails", args: []string{"--http-addr", "fail:1"}, code: 1, ran: true, err: "whep-node failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = false
			var stdout, stderr bytes.Buffer
			if got := run(spec, tc.args, nil, &stdout, &stderr); got != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", got, tc.code, stderr.String())
			}
			if ran != tc.ran {
				t.Errorf("work ran = %v, want %v", ran, tc.ran)
			}
			if !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stdout %q, stderr %q; want them to contain %q and %q", stdout.String(), stderr.String(), tc.out, tc.err)
			}
		})
	}
}

func TestRunServesProfilesOnDebugAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var status int
	var body string
	spec := Spec[config.Node]{
		Name:  "whep-node",
		Load:  config.LoadNode,
		Log:   func(c *config.Node) config.Log { return c.Log },
		Debug: func(c *config.Node) config.Debug { return c.Debug },
		Run: func(ctx context.Context, c *config.Node, _ *slog.Logger) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Debug.Addr+"/debug/pprof/goroutine?debug=1", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			status, body = resp.StatusCode, string(b)
			return err
		},
	}
	var stdout, stderr bytes.Buffer
	if code := run(spec, []string{"--debug-addr", addr}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("GET /debug/pprof/goroutine: %d %q", status, body)
	}
	// The listener is closed when the process's work ends.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("debug listener %s still open after run returned", addr)
	}

	// An address that cannot be bound fails the start, naming it.
	stderr.Reset()
	if code := run(spec, []string{"--debug-addr", "256.0.0.1:1"}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "debug listener 256.0.0.1:1") {
		t.Errorf("unbindable address: exit %d, stderr %q; want 1 and the address", code, stderr.String())
	}
}
