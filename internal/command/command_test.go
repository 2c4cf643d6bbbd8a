package command

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

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
