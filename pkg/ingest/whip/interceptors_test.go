package whip

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

type interceptorRegistry struct{}

// defaults returns pion's default interceptors (NACK, RTCP reports: the
// sender reports a publisher sends) for m.
func (interceptorRegistry) defaults(t *testing.T, m *webrtc.MediaEngine) *interceptor.Registry {
	t.Helper()
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	return ir
}
