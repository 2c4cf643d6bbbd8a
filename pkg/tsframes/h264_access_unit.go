package tsframes

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// h264State is what one H.264 track remembers between access units: the last
// SPS and PPS (to put in front of IDRs that lack them) and whether an IDR has
// been seen (before that, access units cannot be decoded).
type h264State struct {
	sps, pps       []byte
	keyed          bool
	profileLevelID string
}

// profileLevelID formats SPS bytes 1..3 (profile_idc, constraint flags,
// level_idc) as in the SDP fmtp profile-level-id.
func profileLevelID(sps []byte) string {
	return hex.EncodeToString(sps[1:4])
}

// accessUnit turns the NAL units of one access unit (as mediacommon splits
// them) into an Annex-B access unit with 4-byte start codes, without AUD, and
// with SPS and PPS before the IDR when the AU has an IDR. The result does not
// alias au. plidChanged reports that the AU carried an SPS with a new
// profile-level-id (already stored in s.profileLevelID). An error wraps
// ErrNoKeyframe or ErrAccessUnit and means the AU is dropped; the SPS/PPS it
// carried are remembered all the same.
func (s *h264State) accessUnit(au [][]byte) (data []byte, key, plidChanged bool, err error) {
	var sps, pps []byte
	n := 0
	size := 0
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1F) {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS:
			sps = nalu
		case h264.NALUTypePPS:
			pps = nalu
		case h264.NALUTypeIDR:
			key = true
		}
		n++
		size += 4 + len(nalu)
	}

	if sps != nil {
		if len(sps) < 4 {
			return nil, false, false, fmt.Errorf("%w: SPS of %d bytes", ErrAccessUnit, len(sps))
		}
		if !bytes.Equal(sps, s.sps) {
			s.sps = append([]byte(nil), sps...)
		}
		if id := profileLevelID(sps); id != s.profileLevelID {
			s.profileLevelID = id
			plidChanged = true
		}
	}
	if pps != nil && !bytes.Equal(pps, s.pps) {
		s.pps = append([]byte(nil), pps...)
	}

	switch {
	case n == 0:
		return nil, false, plidChanged, fmt.Errorf("%w: no NAL units", ErrAccessUnit)
	case key && (s.sps == nil || s.pps == nil):
		return nil, false, plidChanged, fmt.Errorf("%w: IDR without a known SPS and PPS", ErrAccessUnit)
	case !key && !s.keyed:
		return nil, false, plidChanged, ErrNoKeyframe
	}

	if !key {
		data = make([]byte, 0, size)
		for _, nalu := range au {
			if len(nalu) == 0 || h264.NALUType(nalu[0]&0x1F) == h264.NALUTypeAccessUnitDelimiter {
				continue
			}
			data = appendNALU(data, nalu)
		}
		return data, false, plidChanged, nil
	}

	s.keyed = true
	data = make([]byte, 0, size+8+len(s.sps)+len(s.pps))
	spsDone, ppsDone := false, false
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1F) {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS:
			spsDone = true
		case h264.NALUTypePPS:
			if !spsDone {
				data = appendNALU(data, s.sps)
				spsDone = true
			}
			ppsDone = true
		case h264.NALUTypeIDR:
			if !spsDone {
				data = appendNALU(data, s.sps)
				spsDone = true
			}
			if !ppsDone {
				data = appendNALU(data, s.pps)
				ppsDone = true
			}
		}
		data = appendNALU(data, nalu)
	}
	return data, true, plidChanged, nil
}

func appendNALU(b, nalu []byte) []byte {
	b = append(b, 0, 0, 0, 1)
	return append(b, nalu...)
}
