package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/pion/webrtc/v4"

	"golang.org/x/sync/errgroup"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/ingest/rtmp"
	"github.com/whepcast/whepcast/pkg/ingest/srt"
	"github.com/whepcast/whepcast/pkg/ingest/whip"
)

// protocolIngests are the SRT and RTMP listeners, each nil when its address
// is empty, and the WHIP handler of the ingest port (nil until the
// publications exist) with its UDP port (nil: ephemeral ports). They
// publish through the broker's ingest.Publications.
type protocolIngests struct {
	srt     *srt.Listener
	rtmp    *rtmp.Listener
	whip    *whip.Handler
	whipUDP *whip.ICEUDP
}

// newWHIP creates the WHIP handler: the ingest tokens and idle timeout, the
// viewers' keyframe requests on nc, and the WHEP side's public IPs
// announced as its host candidates.
func (p *protocolIngests) newWHIP(cfg *config.Broker, pubs *ingest.Publications, nc *nats.Conn, logger *slog.Logger) *whip.Handler {
	wc := whip.Config{Tokens: cfg.IngestTokens, Idle: cfg.IngestIdle, AllowOrigin: cfg.WHEP.AllowOrigin,
		Logger: logger.With("source", "whip"),
		KeyframeRequests: func(stream string, fn func()) (func(), error) {
			sub, err := bus.SubscribeKeyframeRequests(nc, stream, fn)
			if err != nil {
				return nil, err
			}
			return func() { _ = sub.Unsubscribe() }, nil
		}}
	if len(cfg.WHEP.PublicIPs) > 0 || p.whipUDP != nil {
		se := &webrtc.SettingEngine{}
		if len(cfg.WHEP.PublicIPs) > 0 {
			se.SetNAT1To1IPs(cfg.WHEP.PublicIPs, webrtc.ICECandidateTypeHost)
		}
		if p.whipUDP != nil {
			p.whipUDP.Configure(se)
		}
		wc.SettingEngine = se
	}
	p.whip = whip.NewHandler(pubs, wc)
	return p.whip
}

// listen binds the listeners that cfg turns on.
func (p *protocolIngests) listen(cfg *config.Broker, logger *slog.Logger) error {
	var err error
	if cfg.SRTAddr != "" {
		p.srt, err = srt.Listen(srt.Config{
			Addr: cfg.SRTAddr, Passphrase: cfg.SRTPassphrase, Latency: cfg.SRTLatency,
			Tokens: cfg.IngestTokens, Idle: cfg.IngestIdle,
			Logger: logger.With("component", "ingest", "source", "srt"),
		})
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	if cfg.RTMPAddr != "" {
		rc := rtmp.Config{
			Addr: cfg.RTMPAddr, Tokens: cfg.IngestTokens, Idle: cfg.IngestIdle,
			Logger: logger.With("component", "ingest", "source", "rtmp"),
		}
		if cfg.RTMPCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.RTMPCert, cfg.RTMPKey)
			if err != nil {
				return fmt.Errorf("broker: rtmp-cert: %w", err)
			}
			rc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		if p.rtmp, err = rtmp.Listen(rc); err != nil {
			return fmt.Errorf("broker: rtmp-addr %s (another address, or --rtmp-addr \"\" to turn RTMP off): %w", cfg.RTMPAddr, err)
		}
	}
	if cfg.WHIPUDPAddr != "" {
		if p.whipUDP, err = whip.ListenICEUDP(cfg.WHIPUDPAddr); err != nil {
			return fmt.Errorf("broker: whip-udp-addr: %w", err)
		}
	}
	return nil
}

// serve runs the listeners in g.
func (p *protocolIngests) serve(ctx context.Context, g *errgroup.Group, b *Broker) {
	if p.srt != nil {
		g.Go(func() error { return p.srt.Serve(ctx, b.reg) })
	}
	if p.rtmp != nil {
		g.Go(func() error { return p.rtmp.Serve(ctx, b.reg) })
	}
}

// close stops the listeners and their connections.
func (p *protocolIngests) close() {
	if p.srt != nil {
		_ = p.srt.Close()
	}
	if p.rtmp != nil {
		_ = p.rtmp.Close()
	}
	if p.whip != nil {
		_ = p.whip.Close()
	}
	if p.whipUDP != nil {
		_ = p.whipUDP.Close()
	}
}

// logAttrs are the bound addresses, for the start log line.
func (p *protocolIngests) logAttrs() []any {
	var attrs []any
	if p.srt != nil {
		attrs = append(attrs, "srt_addr", p.srt.Addr().String())
	}
	if p.rtmp != nil {
		attrs = append(attrs, "rtmp_addr", p.rtmp.Addr().String())
	}
	if p.whipUDP != nil {
		attrs = append(attrs, "whip_udp", fmt.Sprint(p.whipUDP.Addrs()))
	}
	return attrs
}

// SRTAddr is the bound address of the SRT ingest, nil when off.
func (b *Broker) SRTAddr() net.Addr {
	if b.proto.srt == nil {
		return nil
	}
	return b.proto.srt.Addr()
}

// WHIPUDPAddrs are the bound addresses of the WHIP publishers' UDP port,
// nil when they use ephemeral ports.
func (b *Broker) WHIPUDPAddrs() []net.Addr {
	if b.proto.whipUDP == nil {
		return nil
	}
	return b.proto.whipUDP.Addrs()
}

// RTMPAddr is the bound address of the RTMP ingest, nil when off.
func (b *Broker) RTMPAddr() net.Addr {
	if b.proto.rtmp == nil {
		return nil
	}
	return b.proto.rtmp.Addr()
}
