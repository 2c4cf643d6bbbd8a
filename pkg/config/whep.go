package config

import (
	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/whep"
)

// Config maps the WHEP settings onto the whep.Config of a server. It does
// not validate: Validate has (and whep.New does again). Relay maps the
// settings of the relay that feeds the server.
func (w WHEP) Config() whep.Config {
	return whep.Config{
		ICEUDPAddr:             w.ICEUDPAddr,
		ICETCPAddr:             w.ICETCPAddr,
		UDPGSO:                 w.UDPGSO,
		DirectSRTP:             w.DirectSRTP,
		ICEDisconnectedTimeout: w.ICEDisconnectedTimeout,
		ICEFailedTimeout:       w.ICEFailedTimeout,
		PublicIPs:              w.PublicIPs,
		ICEServers:             w.ICEServers,
		Tokens:                 w.Tokens,
		TokenFile:              w.TokenFile,
		AdminTokens:            w.AdminTokens,
		WaitTimeout:            w.WaitTimeout,
		MaxWaiting:             w.MaxWaiting,
		MaxSessions:            w.MaxSessions,
		MaxSessionsPerStream:   w.MaxSessionsPerStream,
		Start:                  relay.StartMode(w.Start),
		AllowOrigin:            w.AllowOrigin,
		DrainTimeout:           w.DrainTimeout,
	}
}

// Relay maps the viewers' start settings onto the relay.Config of the relay
// that feeds a WHEP server; the caller sets its connection, catalog and
// logger. It does not validate: Validate has (and relay.New does again).
func (w WHEP) Relay() relay.Config {
	return relay.Config{
		Start:      relay.StartMode(w.Start),
		ReplayRate: w.ReplayRate,
		// Padding only pays where the packets leave in GSO sends.
		AudioGroupPadding: w.UDPGSO,
	}
}
