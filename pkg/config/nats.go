package config

import "github.com/whepcast/whepcast/pkg/natsconn"

// Config maps the NATS client settings onto the natsconn.Config of a
// connection named name. It does not validate: Validate has (and
// natsconn.Connect does again).
func (c NATSClient) Config(name string) natsconn.Config {
	return natsconn.Config{
		URL:       c.URL,
		Name:      name,
		User:      c.User,
		Password:  c.Password,
		Token:     c.Token,
		NKeyFile:  c.NKeyFile,
		CredsFile: c.CredsFile,
		TLSCA:     c.TLSCA,
		TLSCert:   c.TLSCert,
		TLSKey:    c.TLSKey,
	}
}
