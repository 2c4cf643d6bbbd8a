package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/pkg/config"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(config.Log{Level: "warn", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "stream", "cam1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON record, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["stream"] != "cam1" || rec["level"] != "WARN" {
		t.Fatalf("record = %v", rec)
	}

	buf.Reset()
	l, err = New(config.Log{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("text", "k", "v")
	if got := buf.String(); !strings.Contains(got, "level=INFO msg=text k=v") || strings.Contains(got, "hidden") {
		t.Fatalf("text output = %q", got)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []config.Log{{Level: "loud"}, {Format: "xml"}} {
		if _, err := New(c, &bytes.Buffer{}); err == nil {
			t.Errorf("New(%+v): want error", c)
		}
	}
}
