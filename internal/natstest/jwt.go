package natstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// UnknownAccount names, for Cluster.Creds, an account that the cluster's
// operator signed but that no server knows (it is not in the resolver):
// its users are refused with an authorization violation.
const UnknownAccount = "UNKNOWN"

// trust is the decentralized JWT trust chain of a cluster in JWT mode: an
// operator, and the accounts it signed. Only the creds directory is
// mutable.
type trust struct {
	dir          string // creds files
	operatorFile string // the operator JWT
	accounts     map[string]*jwtAccount

	mu sync.Mutex // serializes writing creds files
}

// jwtAccount is an account signed by the operator.
type jwtAccount struct {
	key nkeys.KeyPair // signs the account's users
	pub string
	jwt string
}

// newTrust generates an operator with a system account (SYS), an
// application account with JetStream (APP, without limits of its own:
// the servers' limits apply) and an account the servers will not know
// (UNKNOWN), and writes the operator JWT into dir.
func newTrust(dir string) (*trust, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, fmt.Errorf("natstest: operator key: %w", err)
	}
	opPub, err := op.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("natstest: operator key: %w", err)
	}
	t := &trust{dir: filepath.Join(dir, "creds"), operatorFile: filepath.Join(dir, "operator.jwt"), accounts: map[string]*jwtAccount{}}
	for _, name := range []string{SystemAccount, AppAccount, UnknownAccount} {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			return nil, fmt.Errorf("natstest: account key %s: %w", name, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("natstest: account key %s: %w", name, err)
		}
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if name == AppAccount {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
				MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit,
			}
		}
		token, err := ac.Encode(op)
		if err != nil {
			return nil, fmt.Errorf("natstest: account JWT %s: %w", name, err)
		}
		t.accounts[name] = &jwtAccount{key: kp, pub: pub, jwt: token}
	}
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "whepcast-test"
	oc.SystemAccount = t.accounts[SystemAccount].pub
	token, err := oc.Encode(op)
	if err != nil {
		return nil, fmt.Errorf("natstest: operator JWT: %w", err)
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	if err := os.WriteFile(t.operatorFile, []byte(token), 0o600); err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	return t, nil
}

// serverConf renders the operator mode settings of a server: the
// operator, the system account, and a memory resolver preloaded with the
// SYS and APP accounts (not UNKNOWN).
func (t *trust) serverConf(b *strings.Builder) {
	q := strconv.Quote
	fmt.Fprintf(b, "operator: %s\n", q(t.operatorFile))
	fmt.Fprintf(b, "system_account: %s\n", t.accounts[SystemAccount].pub)
	b.WriteString("resolver: MEMORY\nresolver_preload: {\n")
	for _, name := range []string{SystemAccount, AppAccount} {
		a := t.accounts[name]
		fmt.Fprintf(b, "  %s: %s\n", a.pub, q(a.jwt))
	}
	b.WriteString("}\n")
}

// creds mints a user name of account and writes its creds file.
func (t *trust) creds(account, name string) (string, error) {
	a, ok := t.accounts[account]
	if !ok {
		return "", fmt.Errorf("%w: %q (want %s, %s or %s)", ErrNoAccount, account, AppAccount, SystemAccount, UnknownAccount)
	}
	if !validUserName(name) {
		return "", fmt.Errorf("%w: %q (letters, digits, - and _)", ErrUserName, name)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("natstest: user key %s: %w", name, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("natstest: user key %s: %w", name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("natstest: user key %s: %w", name, err)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	token, err := uc.Encode(a.key)
	if err != nil {
		return "", fmt.Errorf("natstest: user JWT %s: %w", name, err)
	}
	file, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		return "", fmt.Errorf("natstest: creds %s: %w", name, err)
	}
	path := filepath.Join(t.dir, account+"-"+name+".creds")
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := os.WriteFile(path, file, 0o600); err != nil {
		return "", fmt.Errorf("natstest: %w", err)
	}
	return path, nil
}

func validUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Creds mints a new user called name in account (AppAccount,
// SystemAccount or UnknownAccount) of a cluster in JWT mode, and writes
// its credentials file (user JWT and NKey seed, the form nats
// --creds and --nats-creds take) into the cluster's directory, replacing
// an earlier one of the same account and name. It returns the file's
// path. Errors: ErrNoJWT when the cluster is not in JWT mode,
// ErrNoAccount, ErrUserName for an empty name or one with characters
// other than letters, digits, - and _.
func (c *Cluster) Creds(account, name string) (string, error) {
	if c.trust == nil {
		return "", ErrNoJWT
	}
	return c.trust.creds(account, name)
}

// UserCreds mints a user of the application account: Creds(AppAccount,
// name).
func (c *Cluster) UserCreds(name string) (string, error) { return c.Creds(AppAccount, name) }

// AccountKey returns the public key (A...) of account (AppAccount,
// SystemAccount or UnknownAccount) of a cluster in JWT mode, the account
// name servers report for its connections; "" otherwise.
func (c *Cluster) AccountKey(account string) string {
	if c.trust == nil {
		return ""
	}
	if a, ok := c.trust.accounts[account]; ok {
		return a.pub
	}
	return ""
}
