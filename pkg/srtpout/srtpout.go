// Package srtpout encrypts the RTP packets a WebRTC session sends, outside
// pion's per-packet write path: an Encrypter holds the session's outbound
// SRTP context, made from the keys of the session's pion DTLS transport
// once DTLS is connected (RFC 5764 key export, as pion does), and
// encrypts a header and payload in place into a caller's buffer, such as a
// UDP batch's. The packets are the same as pion's SRTP session would send;
// the receiver cannot tell the difference. Pion keeps ICE, DTLS, RTCP (in
// and out) and the session.
//
// pion/webrtc does not export a DTLS transport's connection, so FromDTLS
// reads two unexported fields of webrtc.DTLSTransport (conn and
// srtpEndpoint) by reflection; it fails with ErrPionLayout, never panics,
// when a pion upgrade changed them (a test of this package says so at
// once).
package srtpout

import "errors"

// ErrPionLayout is returned when the unexported fields of
// webrtc.DTLSTransport this package reads are not there (pion changed).
var ErrPionLayout = errors.New("srtpout: pion's DTLSTransport layout changed")

// ErrNotConnected is returned by FromDTLS before DTLS is connected.
var ErrNotConnected = errors.New("srtpout: DTLS is not connected")
