package config

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Options returns the nats.Options that authenticate and secure a connection
// as configured: user and password, token, NKey seed file, credentials file,
// CA and client certificate. It does not include the URL. It fails when the
// NKey seed file cannot be read, or the credentials file does not hold a
// user JWT and its seed.
func (c NATSClient) Options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey file: %w", err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		if err := checkCredsFile(c.CredsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}
