package srtpout

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"unsafe"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Encrypter encrypts the outbound RTP packets of one session (every SSRC
// it sends: media and RTX). It is not safe for concurrent use: the SRTP
// context follows each SSRC's rollover counter from the sequence numbers
// it sees, so one writer (or a lock) must order the packets.
type Encrypter struct {
	ctx      *srtp.Context
	profile  srtp.ProtectionProfile
	overhead int        // bytes SRTP adds to a packet (the tag)
	raw      io.Writer  // the transport's SRTP endpoint (ICE, any path)
	hdr      rtp.Header // scratch for EncryptRTP
}

// FromDTLS returns the Encrypter of the session whose connected DTLS
// transport is dt; isClient tells whether this side is the DTLS client (see
// IsDTLSClient). It fails with ErrNotConnected before the handshake is
// done, with ErrPionLayout when pion's fields moved.
func FromDTLS(dt *webrtc.DTLSTransport, isClient bool) (*Encrypter, error) {
	conn, raw, err := fields(dt)
	if err != nil {
		return nil, err
	}
	if conn == nil || raw == nil || dt.State() != webrtc.DTLSTransportStateConnected {
		return nil, ErrNotConnected
	}
	dp, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, fmt.Errorf("srtpout: no SRTP protection profile negotiated")
	}
	profile, err := profileOf(dp)
	if err != nil {
		return nil, err
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, fmt.Errorf("srtpout: DTLS connection state: %w", ErrNotConnected)
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return nil, fmt.Errorf("srtpout: export SRTP keys: %w", err)
	}
	return newEncrypter(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile, raw)
}

func newEncrypter(key, salt []byte, profile srtp.ProtectionProfile, raw io.Writer) (*Encrypter, error) {
	ctx, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		return nil, fmt.Errorf("srtpout: SRTP context: %w", err)
	}
	tag, err := profile.AuthTagRTPLen()
	if err != nil {
		return nil, fmt.Errorf("srtpout: %v: %w", profile, err)
	}
	aead, err := profile.AEADAuthTagLen()
	if err != nil {
		return nil, fmt.Errorf("srtpout: %v: %w", profile, err)
	}
	return &Encrypter{ctx: ctx, profile: profile, overhead: tag + aead, raw: raw}, nil
}

// Profile returns the SRTP protection profile in use.
func (e *Encrypter) Profile() srtp.ProtectionProfile { return e.profile }

// Size returns the size of the SRTP packet of h and payload.
func (e *Encrypter) Size(h *rtp.Header, payload []byte) int {
	return h.MarshalSize() + len(payload) + e.overhead
}

// EncryptTo writes the SRTP packet of h and payload into dst, which must
// be Size bytes long. h must have no CSRC (the relay's packets have none).
func (e *Encrypter) EncryptTo(dst []byte, h *rtp.Header, payload []byte) error {
	n, err := h.MarshalTo(dst)
	if err != nil {
		return fmt.Errorf("srtpout: marshal RTP header: %w", err)
	}
	plain := n + copy(dst[n:], payload)
	out, err := e.ctx.EncryptRTP(dst[:0], dst[:plain], &e.hdr)
	if err != nil {
		return fmt.Errorf("srtpout: encrypt: %w", err)
	}
	if len(out) != len(dst) || &out[0] != &dst[0] {
		return fmt.Errorf("srtpout: encrypted %d bytes, want %d in place", len(out), len(dst))
	}
	return nil
}

// Send writes an SRTP packet (from EncryptTo) to the session's transport
// as pion would: through ICE's selected pair, whatever it is (UDP, TCP,
// TURN).
func (e *Encrypter) Send(pkt []byte) error {
	if _, err := e.raw.Write(pkt); err != nil {
		return fmt.Errorf("srtpout: send: %w", err)
	}
	return nil
}

// IsDTLSClient reports whether the side whose local description is sdp is
// the DTLS client: its a=setup is active (RFC 5763).
func IsDTLSClient(sdp string) bool {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=setup:"); ok {
			return v == "active"
		}
	}
	return false
}

// fields returns dt's DTLS connection and SRTP endpoint (nil before they
// are set).
func fields(dt *webrtc.DTLSTransport) (*dtls.Conn, io.Writer, error) {
	v := reflect.ValueOf(dt).Elem()
	cf := v.FieldByName("conn")
	if !cf.IsValid() || cf.Type() != reflect.TypeFor[*dtls.Conn]() {
		return nil, nil, fmt.Errorf("%w: no field conn *dtls.Conn", ErrPionLayout)
	}
	ef := v.FieldByName("srtpEndpoint")
	if !ef.IsValid() || ef.Kind() != reflect.Pointer {
		return nil, nil, fmt.Errorf("%w: no field srtpEndpoint", ErrPionLayout)
	}
	conn := *(**dtls.Conn)(unsafe.Pointer(cf.UnsafeAddr()))
	ep := reflect.NewAt(ef.Type(), unsafe.Pointer(ef.UnsafeAddr())).Elem()
	w, ok := ep.Interface().(io.Writer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: srtpEndpoint is no io.Writer", ErrPionLayout)
	}
	if ep.IsNil() {
		w = nil
	}
	return conn, w, nil
}

// profileOf maps a DTLS-SRTP profile to pion/srtp's.
func profileOf(p dtls.SRTPProtectionProfile) (srtp.ProtectionProfile, error) {
	switch p {
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case dtls.SRTP_AES128_CM_HMAC_SHA1_32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case dtls.SRTP_AEAD_AES_128_GCM:
		return srtp.ProtectionProfileAeadAes128Gcm, nil
	case dtls.SRTP_AEAD_AES_256_GCM:
		return srtp.ProtectionProfileAeadAes256Gcm, nil
	case dtls.SRTP_NULL_HMAC_SHA1_80:
		return srtp.ProtectionProfileNullHmacSha1_80, nil
	default:
		return 0, fmt.Errorf("srtpout: SRTP protection profile %#04x not supported", uint16(p))
	}
}
