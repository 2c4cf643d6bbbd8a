package rtmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/whepcast/whepcast/internal/ingesttest"
	"github.com/whepcast/whepcast/internal/tstest"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whepcast test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestRTMPSPublishes: with a TLS configuration the listener is RTMPS: a
// publisher over rtmps:// publishes every frame; one speaking plain RTMP to
// it is refused.
func TestRTMPSPublishes(t *testing.T) {
	cert, pool := selfSigned(t)
	rec := ingesttest.NewRecorder()
	pubs := rec.Publications(t)
	l := serve(t, Config{HandshakeTimeout: testDeadline, TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, pubs)
	ref := tstest.Demux(t, tstest.Read(t, "av.ts"))

	// Plain RTMP to the RTMPS port: the TLS handshake fails, nothing is
	// published.
	if p, err := dial(t, l, "live/plain", ref); err == nil {
		p.c.Close()
		t.Fatal("a plain RTMP publisher was accepted by the RTMPS listener")
	}

	u, err := url.Parse("rtmps://" + l.Addr().String() + "/live/cam1")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := dialURL(t, u, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ref)
	if err != nil {
		t.Fatalf("RTMPS publisher: %v", err)
	}
	tp.send(t, ref.Frames)
	tp.c.Close()

	pub := rec.Opened(t, testDeadline)
	pub.WaitEnded(t, testDeadline)
	if pub.Stream != "cam1" {
		t.Fatalf("stream %q, want cam1", pub.Stream)
	}
	sameFrames(t, pub.Frames(), ref.Frames)
	if got := l.Refused(); got != 1 {
		t.Fatalf("refused %d, want the plain RTMP attempt", got)
	}
}
