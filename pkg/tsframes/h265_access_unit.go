package tsframes

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// h265Profile is what the SDP fmtp of an H.265 track says of its SPS
// (RFC 7798 section 7.1): general_profile_idc, general_tier_flag and
// general_level_idc.
type h265Profile struct {
	profileID, tierFlag, levelID int
}

// h265State is what one H.265 track remembers between access units: the
// last VPS, SPS and PPS (to put in front of IRAP pictures that lack them),
// whether an IRAP picture has been seen (before that, access units cannot be
// decoded), and the SPS's profile, tier and level.
type h265State struct {
	vps, sps, pps []byte
	keyed         bool
	profile       h265Profile
}

// h265NALType is the type of an H.265 NAL unit (first header byte, bits 1-6).
func h265NALType(nalu []byte) h265.NALUType {
	return h265.NALUType(nalu[0] >> 1 & 0x3f)
}

// isIRAP reports whether t is an intra random access point picture (BLA,
// IDR or CRA: types 16 to 21), where a decoder can start.
func isIRAP(t h265.NALUType) bool {
	return t >= h265.NALUType_BLA_W_LP && t <= h265.NALUType_CRA_NUT
}

// parseH265Profile reads the profile_tier_level of an SPS NAL unit: after
// the 2-byte NAL header and one byte of IDs, the general profile space, tier
// and profile_idc, 4 bytes of compatibility flags, 6 of constraint flags,
// then general_level_idc.
func parseH265Profile(sps []byte) (h265Profile, error) {
	head := sps[:min(len(sps), 32)] // emulation prevention may hide a few bytes
	rbsp := h264.EmulationPreventionRemove(head)
	if len(rbsp) < 15 {
		return h265Profile{}, fmt.Errorf("%w: H.265 SPS of %d bytes", ErrAccessUnit, len(sps))
	}
	return h265Profile{
		profileID: int(rbsp[3] & 0x1f),
		tierFlag:  int(rbsp[3] >> 5 & 1),
		levelID:   int(rbsp[14]),
	}, nil
}

// accessUnit turns the NAL units of one H.265 access unit into an Annex-B
// access unit with 4-byte start codes, without AUD, and with VPS, SPS and
// PPS before the first IRAP picture slice when the AU has one (it is then a
// keyframe). The result does not alias au. changed reports that the AU
// carried an SPS with a new profile, tier or level (already stored in
// s.profile). An error wraps ErrNoKeyframe or ErrAccessUnit and means the AU
// is dropped; the parameter sets it carried are remembered all the same.
func (s *h265State) accessUnit(au [][]byte) (data []byte, key, changed bool, err error) {
	var vps, sps, pps []byte
	n, size := 0, 0
	for _, nalu := range au {
		if len(nalu) < 2 {
			continue
		}
		switch t := h265NALType(nalu); {
		case t == h265.NALUType_AUD_NUT:
			continue
		case t == h265.NALUType_VPS_NUT:
			vps = nalu
		case t == h265.NALUType_SPS_NUT:
			sps = nalu
		case t == h265.NALUType_PPS_NUT:
			pps = nalu
		case isIRAP(t):
			key = true
		}
		n++
		size += 4 + len(nalu)
	}

	if sps != nil {
		p, err := parseH265Profile(sps)
		if err != nil {
			return nil, false, false, err
		}
		if !bytes.Equal(sps, s.sps) {
			s.sps = append([]byte(nil), sps...)
		}
		if p != s.profile {
			s.profile, changed = p, true
		}
	}
	if vps != nil && !bytes.Equal(vps, s.vps) {
		s.vps = append([]byte(nil), vps...)
	}
	if pps != nil && !bytes.Equal(pps, s.pps) {
		s.pps = append([]byte(nil), pps...)
	}

	switch {
	case n == 0:
		return nil, false, changed, fmt.Errorf("%w: no NAL units", ErrAccessUnit)
	case key && (s.vps == nil || s.sps == nil || s.pps == nil):
		return nil, false, changed, fmt.Errorf("%w: IRAP picture without a known VPS, SPS and PPS", ErrAccessUnit)
	case !key && !s.keyed:
		return nil, false, changed, ErrNoKeyframe
	}

	if key {
		s.keyed = true
		size += 12 + len(s.vps) + len(s.sps) + len(s.pps)
	}
	data = make([]byte, 0, size)
	// The parameter sets go before the first slice of the IRAP picture,
	// each unless the AU carries it before that slice.
	var vpsDone, spsDone, ppsDone bool
	for _, nalu := range au {
		if len(nalu) < 2 {
			continue
		}
		switch t := h265NALType(nalu); {
		case t == h265.NALUType_AUD_NUT:
			continue
		case !key:
		case t == h265.NALUType_VPS_NUT:
			vpsDone = true
		case t == h265.NALUType_SPS_NUT:
			data = s.appendMissing(data, &vpsDone, nil, nil)
			spsDone = true
		case t == h265.NALUType_PPS_NUT:
			data = s.appendMissing(data, &vpsDone, &spsDone, nil)
			ppsDone = true
		case isIRAP(t):
			data = s.appendMissing(data, &vpsDone, &spsDone, &ppsDone)
		}
		data = appendNALU(data, nalu)
	}
	return data, key, changed, nil
}

// appendMissing appends to data, in order, the remembered parameter sets
// whose flag is given and not set yet, and sets those flags.
func (s *h265State) appendMissing(data []byte, vpsDone, spsDone, ppsDone *bool) []byte {
	for _, ps := range []struct {
		done *bool
		nalu []byte
	}{{vpsDone, s.vps}, {spsDone, s.sps}, {ppsDone, s.pps}} {
		if ps.done != nil && !*ps.done {
			data = appendNALU(data, ps.nalu)
			*ps.done = true
		}
	}
	return data
}

// H265AccessUnits turns the NAL units of the successive access units of one
// H.265 track into frame data as the Demuxer does for MPEG-TS (for the
// ingests that read H.265 from other containers, such as RTMP): Annex-B
// without AUD, VPS, SPS and PPS before every IRAP picture, nothing before
// the first IRAP picture. The zero value is ready; it is used by one
// goroutine.
type H265AccessUnits struct{ st h265State }

// Next returns the frame data of one access unit, whether it is a keyframe,
// and whether its SPS changed the profile, tier or level (see Fill). An
// error wraps ErrNoKeyframe or ErrAccessUnit and means the access unit is
// dropped; its parameter sets are remembered all the same (so the
// parameter sets of a codec configuration can be passed as an access unit
// of their own).
func (h *H265AccessUnits) Next(au [][]byte) (data []byte, key, changed bool, err error) {
	return h.st.accessUnit(au)
}

// Fill sets t's ProfileID, TierFlag and LevelID to those of the latest
// SPS (zero before any).
func (h *H265AccessUnits) Fill(t *Track) { setH265Profile(t, h.st.profile) }
