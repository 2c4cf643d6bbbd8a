package rtmp

import (
	"bytes"
	"encoding/hex"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// h264Track turns the NAL units of RTMP's H.264 access units (AVCC, split
// by gortmplib) into the Annex-B access units tsframes produces: 4-byte start
// codes, no AUD, SPS and PPS before every IDR, nothing before the first IDR.
type h264Track struct {
	sps, pps []byte
	keyed    bool
}

// profileLevelID is the SDP profile-level-id of the current SPS, "" when
// there is none.
func (t *h264Track) profileLevelID() string {
	if len(t.sps) < 4 {
		return ""
	}
	return hex.EncodeToString(t.sps[1:4])
}

// accessUnit returns the Annex-B access unit of au and whether it starts
// with an IDR; nil when au carries no picture (a sequence header: its SPS
// and PPS are kept) or cannot be decoded yet (no IDR with known SPS and PPS
// so far). spsChanged reports a new SPS. The result does not alias au.
func (t *h264Track) accessUnit(au [][]byte) (data []byte, key, spsChanged bool) {
	picture := false
	size := 0
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1F) {
		case h264.NALUTypeSPS:
			if len(nalu) >= 4 && !bytes.Equal(nalu, t.sps) {
				t.sps = append([]byte(nil), nalu...)
				spsChanged = true
			}
		case h264.NALUTypePPS:
			if !bytes.Equal(nalu, t.pps) {
				t.pps = append([]byte(nil), nalu...)
			}
		case h264.NALUTypeIDR:
			key, picture = true, true
		case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA:
			picture = true
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		}
		size += 4 + len(nalu)
	}
	switch {
	case !picture:
		return nil, false, spsChanged
	case key && (t.sps == nil || t.pps == nil):
		return nil, false, spsChanged
	case !key && !t.keyed:
		return nil, false, spsChanged
	}
	if key {
		t.keyed = true
		size += 8 + len(t.sps) + len(t.pps)
	}
	data = make([]byte, 0, size)
	if key {
		data = appendNALU(data, t.sps)
		data = appendNALU(data, t.pps)
	}
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1F) {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS, h264.NALUTypePPS:
			if key {
				continue // already in front
			}
		}
		data = appendNALU(data, nalu)
	}
	return data, key, spsChanged
}

func appendNALU(b, nalu []byte) []byte {
	return append(append(b, 0, 0, 0, 1), nalu...)
}
