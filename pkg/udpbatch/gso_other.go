//go:build !linux

package udpbatch

import (
	"errors"
	"net"
	"net/netip"
)

// gsoSupported: UDP segmentation offload is Linux's.
const gsoSupported = false

func sendGSO(*net.UDPConn, []byte, int, netip.AddrPort) error {
	return errors.New("udpbatch: no UDP segmentation offload on this platform")
}
