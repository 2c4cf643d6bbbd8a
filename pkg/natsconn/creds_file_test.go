package natsconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// userCreds returns a credentials file's content for a new user signed by
// a new account, and the user's seed.
func userCreds(t *testing.T) (creds, seed []byte, token string) {
	t.Helper()
	acct, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "broker"
	token, err = uc.Encode(acct)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ = user.Seed()
	creds, err = jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	return creds, seed, token
}

func TestCredsFileChecked(t *testing.T) {
	creds, seed, token := userCreds(t)
	_, otherSeed, _ := userCreds(t)
	mismatched := []byte(strings.Replace(string(creds), string(seed), string(otherSeed), 1))
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
		want    string // "" = valid
	}{
		{"valid", creds, ""},
		{"empty", nil, "no user JWT"},
		{"garbage", []byte("not a creds file\n"), "no user JWT"},
		{"seed only", seed, "no user JWT"},
		{"jwt only", []byte(token), "no user seed"},
		{"another user's seed", mismatched, "the seed is not the JWT's user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".creds")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			opts, err := Config{CredsFile: path}.authOptions()
			if tc.want == "" {
				if err != nil || len(opts) != 1 {
					t.Fatalf("valid file: %d options, %v", len(opts), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want %q naming %s", err, tc.want, path)
			}
		})
	}
}
