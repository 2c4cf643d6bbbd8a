package srt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	cases := []struct {
		id      string
		want    request
		wantErr error
	}{
		{id: "publish:cam1", want: request{stream: "cam1"}},
		{id: "publish:cam1?token=s3cret", want: request{stream: "cam1", token: "s3cret"}},
		{id: "#!::r=cam1,m=publish", want: request{stream: "cam1"}},
		{id: "#!::m=publish,u=alice,r=cam2?token=t", want: request{stream: "cam2", token: "t"}},
		{id: "#!::r=cam1,m=request", wantErr: errMode},
		{id: "#!::r=cam1", wantErr: errMode},
		{id: "#!::m=publish", wantErr: errStreamID},
		{id: "#!::r", wantErr: errStreamID},
		{id: "read:cam1", wantErr: errMode},
		{id: "cam1", wantErr: errStreamID},
		{id: "", wantErr: errStreamID},
		{id: "publish:", wantErr: errStreamID},
		{id: "publish:?token=x", wantErr: errStreamID},
		{id: "publish:" + strings.Repeat("a", maxStreamIDSize), wantErr: errStreamID},
	}
	for _, c := range cases {
		got, err := parseStreamID(c.id)
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%q: err %v, want %v", c.id, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.id, got, err, c.want)
		}
	}
}

func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"publish:cam1", "publish:cam1?token=a&x=y", "#!::r=cam1,m=publish", "#!::r=a,m=request,u=x", "read:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		r, err := parseStreamID(id)
		if err == nil && (r.stream == "" || len(id) > maxStreamIDSize) {
			t.Fatalf("%q accepted as %+v", id, r)
		}
	})
}
