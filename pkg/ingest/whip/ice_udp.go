package whip

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// ICEUDP is one UDP port shared by the PeerConnections of every WHIP
// publisher (an ICE UDP mux), so that a firewall needs one port open.
type ICEUDP struct {
	mux      ice.UDPMux
	networks []webrtc.NetworkType
	loopback bool
}

// ListenICEUDP binds addr ("host:port"; an empty or unspecified host binds
// every interface, one socket per local address on port). It returns an
// error naming addr when it is malformed or busy.
func ListenICEUDP(addr string) (*ICEUDP, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("whip: UDP address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("whip: UDP address %q: bad port", addr)
	}
	ip := net.ParseIP(host)
	if host == "" || ip != nil && ip.IsUnspecified() {
		iceNets := []ice.NetworkType{ice.NetworkTypeUDP4}
		u := &ICEUDP{networks: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}}
		if host == "" || ip.To4() == nil {
			iceNets = append(iceNets, ice.NetworkTypeUDP6)
			u.networks = append(u.networks, webrtc.NetworkTypeUDP6)
		}
		if u.mux, err = ice.NewMultiUDPMuxFromPort(port, ice.UDPMuxFromPortWithNetworks(iceNets...)); err != nil {
			return nil, fmt.Errorf("whip: UDP port %d: %w", port, err)
		}
		return u, nil
	}
	if ip == nil {
		ips, err := net.DefaultResolver.LookupIP(context.Background(), "ip", host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("whip: UDP address %q: cannot resolve %q", addr, host)
		}
		ip = ips[0]
	}
	network, types := "udp4", []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if ip.To4() == nil {
		network, types = "udp6", []webrtc.NetworkType{webrtc.NetworkTypeUDP6}
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("whip: UDP %s: %w", addr, err)
	}
	return &ICEUDP{mux: webrtc.NewICEUDPMux(nil, conn), networks: types, loopback: ip.IsLoopback()}, nil
}

// Addrs returns the bound addresses.
func (u *ICEUDP) Addrs() []net.Addr { return u.mux.GetListenAddresses() }

// Configure makes the PeerConnections of se use the port: its mux, its
// network types (UDP only: no ICE-TCP, no other port), loopback candidates
// when it is bound to a loopback address.
func (u *ICEUDP) Configure(se *webrtc.SettingEngine) {
	se.SetICEUDPMux(u.mux)
	se.SetNetworkTypes(u.networks)
	se.SetIncludeLoopbackCandidate(u.loopback)
}

// Close closes the port; the PeerConnections using it stop receiving.
func (u *ICEUDP) Close() error { return u.mux.Close() }
