//go:build linux

package udpbatch

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// gsoSupported: Linux has UDP_SEGMENT (4.18+; older kernels fail the send,
// which turns GSO off).
const gsoSupported = true

const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
)

// sendGSO sends data to addr as datagrams of seg bytes (the last may be
// shorter) with one sendmsg carrying a UDP_SEGMENT control message.
func sendGSO(c *net.UDPConn, data []byte, seg int, addr netip.AddrPort) error {
	var oob [32]byte // CmsgSpace(2) is 24 on 64-bit, 16 on 32-bit
	space := syscall.CmsgSpace(2)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[syscall.CmsgLen(0)])) = uint16(seg)
	_, _, err := c.WriteMsgUDPAddrPort(data, oob[:space], addr)
	return err
}
