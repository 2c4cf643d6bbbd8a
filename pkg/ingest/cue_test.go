package ingest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestIngestPublishesCues: the SCTE-35 cues of an MPEG-TS publication
// reach its Publisher with their splice time and section; a cue before the
// first access unit (nothing to apply it to yet) does not.
func TestIngestPublishesCues(t *testing.T) {
	base := tstest.Read(t, "av.ts")
	pts := tstest.VideoPTS(t, base)
	early := tstest.TimeSignal(pts[0])
	insert := tstest.SpliceInsert(9, pts[0]+3*90000, 0, 0)
	ts := tstest.SCTE35(t, base, []tstest.CueAt{
		{Before: pts[0], Section: early},
		{Before: pts[0] + 2*90000, Section: insert},
	})
	rec := ingesttest.NewRecorder()
	ps := rec.Publications(t)
	if _, err := ps.Ingest(t.Context(), "cues", ingest.Source{Kind: "http", Body: bytes.NewReader(ts)}); err != nil {
		t.Fatal(err)
	}
	p := rec.Opened(t, 10*time.Second)
	cues := p.Cues()
	if len(cues) != 1 {
		t.Fatalf("%d cues published, want 1: %+v", len(cues), cues)
	}
	if c := cues[0]; c.PTS != pts[0]+3*90000 || c.Command != tsframes.SpliceInsert || c.EventID != 9 || !bytes.Equal(c.Section, insert) {
		t.Fatalf("cue %+v", c)
	}
}
