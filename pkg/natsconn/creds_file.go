package natsconn

import (
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
)

// checkCredsFile reads a NATS credentials file (a user JWT and its NKey
// seed) so that a bad file is reported at start, naming it, rather than as
// the server's "Authorization Violation". nats.go reads the file again at
// every connection.
func checkCredsFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats creds file: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return fmt.Errorf("nats creds file %s: no user JWT: %w", path, err)
	}
	claims, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return fmt.Errorf("nats creds file %s: no user JWT: %w", path, err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("nats creds file %s: no user seed: %w", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("nats creds file %s: user seed: %w", path, err)
	}
	if pub != claims.Subject {
		return fmt.Errorf("nats creds file %s: the seed is not the JWT's user", path)
	}
	return nil
}
