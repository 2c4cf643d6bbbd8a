// Package logging builds the *slog.Logger of a whepcast binary from its
// config.Log: level debug, info, warn or error; format text or json.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/whepcast/whepcast/pkg/config"
)

// New returns a logger writing to w at cfg.Level in cfg.Format. Empty values
// mean info and text. It fails on an unknown level or format.
func New(cfg config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(cfg.Level) {
	case "debug":
		level = slog.LevelDebug
	case "", "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("logging: unknown level %q", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("logging: unknown format %q", cfg.Format)
	}
}
