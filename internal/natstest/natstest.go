// Package natstest runs NATS JetStream for tests: Embedded and EmbeddedConn
// start one in-process server for a test, and Start a cluster of N servers
// on loopback (the nats-server/v2 version pinned in go.mod) joined by
// routes, each with its own store, optionally requiring authentication
// (user and password, NKeys, a token, or JWT operator mode with Creds
// minting users) and TLS, with an optional system account for monitoring.
//
// A cluster's servers are child processes by default, so that Kill is a
// real crash (SIGKILL, no Raft leader stepdown, no flush of the store);
// Stop is the graceful shutdown and Restart starts a server again on the
// same ports and store; Config.InProcess runs them in the test's process
// instead. Start and Restart return once every server is healthy and all
// agree on a meta leader, every wait bounded by the caller's context; Close
// stops every server, and on Linux the servers die with the test process.
package natstest

import "time"

// Defaults applied by Start to zero Config fields.
const (
	DefaultServers     = 3
	DefaultClusterName = "whepcast-test"
	// DefaultMaxMemoryStore and DefaultMaxFileStore bound each server's
	// JetStream resources.
	DefaultMaxMemoryStore = 256 << 20
	DefaultMaxFileStore   = 1 << 30
	// StopTimeout bounds a graceful Stop before the server is killed.
	StopTimeout = 10 * time.Second
)

// Config describes a cluster.
type Config struct {
	// Binary is the nats-server executable (see Build). Required unless
	// InProcess.
	Binary string
	// InProcess runs the servers as nats-server/v2 library servers in this
	// process (goroutines) instead of child processes: no build, but Kill
	// is then a shutdown like Stop (no crash), and a server's goroutines
	// share the test's race detector and CPU.
	InProcess bool
	// Dir holds the configuration files, stores and logs (a t.TempDir()).
	// Required.
	Dir string
	// Servers is the number of servers (default 3; 1 runs a single server
	// without routes).
	Servers int
	// ClusterName names the cluster (default "whepcast-test-PID-N", unique
	// per cluster).
	ClusterName string
	// Auth, when set, is required from clients.
	Auth Auth
	// TLS, when set, is required from clients (routes and monitoring stay
	// plain).
	TLS *TLS
	// MaxPayload is the servers' max_payload (0: nats-server's default, 1 MiB).
	MaxPayload int32
	// System, when its User is set, creates a system account (SYS) with
	// that user, for the monitoring requests of `nats server report` and
	// the like. Clients then live in the account APP (JetStream enabled):
	// the Auth users, or, without Auth, everyone who connects without
	// credentials (no_auth_user). It excludes Auth.Token.
	System Auth
	// JWT runs the servers in operator mode (decentralized
	// authentication): they trust an operator generated for the cluster,
	// with its system account SYS, an application account APP with
	// JetStream, both preloaded in a memory resolver, and an account
	// UNKNOWN that it signed but the servers do not know. Cluster.Creds
	// mints users of these accounts as credentials files; a client without
	// credentials is refused. It excludes Auth and System; TLS may be added.
	JWT bool

	// pickPort picks each free port (default freePort; tests give taken
	// ones).
	pickPort func() (int, error)
}

// System account and application account names, when Config.System or
// Config.JWT is set (in JWT mode they are the accounts' JWT names, the
// servers know them by their public keys: see Cluster.AccountKey).
const (
	SystemAccount = "SYS"
	AppAccount    = "APP"
	// anonymousUser is the APP user of clients without credentials.
	anonymousUser = "app"
)

// Auth is the client authentication a cluster requires. User and NKeys may
// be combined; Token excludes both.
type Auth struct {
	User, Password string
	// NKeys are the public keys (U...) of NKey users.
	NKeys []string
	// Token is an authentication token.
	Token string
}

func (a Auth) enabled() bool { return a.User != "" || len(a.NKeys) > 0 || a.Token != "" }

// TLS is the client TLS of a cluster: PEM files, see NewTLS.
type TLS struct {
	CertFile, KeyFile string
	// CAFile verifies client certificates; with Verify, clients must
	// present one.
	CAFile string
	Verify bool
}
