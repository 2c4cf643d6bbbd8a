package natstest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ports are the loopback ports of one server, kept across restarts.
type ports struct {
	client, cluster, monitor int
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("natstest: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serverConf renders the nats-server configuration of server i; trust is
// the operator of JWT mode (nil otherwise).
func serverConf(cfg Config, trust *trust, i int, all []ports, storeDir string) string {
	var b strings.Builder
	q := strconv.Quote
	p := all[i]
	fmt.Fprintf(&b, "server_name: %s\n", q(serverName(i)))
	fmt.Fprintf(&b, "listen: %s\n", q(hostPort(p.client)))
	fmt.Fprintf(&b, "http: %s\n", q(hostPort(p.monitor)))
	if cfg.MaxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", cfg.MaxPayload)
	}
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n  max_memory_store: %d\n  max_file_store: %d\n}\n",
		q(storeDir), DefaultMaxMemoryStore, DefaultMaxFileStore)
	if len(all) > 1 {
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  listen: %s\n  routes: [\n", q(cfg.ClusterName), q(hostPort(p.cluster)))
		for _, o := range all {
			fmt.Fprintf(&b, "    %s\n", q("nats-route://"+hostPort(o.cluster)))
		}
		b.WriteString("  ]\n}\n")
	}
	users := func(indent string, a Auth) {
		fmt.Fprintf(&b, "%susers: [\n", indent)
		if a.User != "" {
			fmt.Fprintf(&b, "%s  {user: %s, password: %s}\n", indent, q(a.User), q(a.Password))
		}
		for _, k := range a.NKeys {
			fmt.Fprintf(&b, "%s  {nkey: %s}\n", indent, q(k))
		}
		fmt.Fprintf(&b, "%s]\n", indent)
	}
	switch a := cfg.Auth; {
	case trust != nil:
		trust.serverConf(&b)
	case cfg.System.User != "":
		app := a
		if !a.enabled() {
			app = Auth{User: anonymousUser, Password: anonymousUser}
			fmt.Fprintf(&b, "no_auth_user: %s\n", q(anonymousUser))
		}
		fmt.Fprintf(&b, "accounts {\n  %s {\n    jetstream: enabled\n", AppAccount)
		users("    ", app)
		fmt.Fprintf(&b, "  }\n  %s {\n", SystemAccount)
		users("    ", Auth{User: cfg.System.User, Password: cfg.System.Password})
		fmt.Fprintf(&b, "  }\n}\nsystem_account: %s\n", SystemAccount)
	case a.Token != "":
		fmt.Fprintf(&b, "authorization {\n  token: %s\n}\n", q(a.Token))
	case a.enabled():
		b.WriteString("authorization {\n")
		users("  ", a)
		b.WriteString("}\n")
	}
	if t := cfg.TLS; t != nil {
		fmt.Fprintf(&b, "tls {\n  cert_file: %s\n  key_file: %s\n", q(t.CertFile), q(t.KeyFile))
		if t.CAFile != "" {
			fmt.Fprintf(&b, "  ca_file: %s\n", q(t.CAFile))
		}
		if t.Verify {
			b.WriteString("  verify: true\n")
		}
		b.WriteString("  timeout: 2\n}\n")
	}
	return b.String()
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// serverName is the server_name of server i: n0, n1, ...
func serverName(i int) string { return "n" + strconv.Itoa(i) }
