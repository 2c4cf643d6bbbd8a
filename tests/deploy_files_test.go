package tests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whepcast/whepcast/pkg/config"
	"github.com/whepcast/whepcast/pkg/node"
)

// deployDir holds the deployment files (the tests run in tests/).
const deployDir = "../deploy"

// Shutdown budget of the binaries, beyond the drain timeout: the node waits
// up to 5 s past the drain timeout for the sessions to be closed, then shuts
// down within node.ShutdownTimeout and drains NATS within as much again; the
// broker's own shutdown (ingest, embedded NATS) takes up to 15 s
// (broker.Options.ShutdownTimeout's default).
const (
	drainGrace      = 5 * time.Second
	brokerShutdown  = 15 * time.Second
	stopMarginFloor = 5 * time.Second // what a stop timeout must leave beyond the worst case
)

// loader loads a binary's configuration from flags and environment.
type loader struct {
	name  string
	load  func(args, env []string) (drain time.Duration, err error)
	usage string // --help, which lists every WHEPCAST_ variable
	// stop is the worst-case time from SIGTERM to exit beyond the drain
	// timeout.
	stop time.Duration
}

func loaders(t *testing.T) map[string]*loader {
	t.Helper()
	ls := map[string]*loader{
		"whep-node": {name: "whep-node", stop: drainGrace + 2*node.ShutdownTimeout, load: func(a, e []string) (time.Duration, error) {
			c, err := config.LoadNode(a, e)
			if err != nil {
				return 0, err
			}
			return c.WHEP.DrainTimeout, nil
		}},
		"whepcast-broker": {name: "broker", stop: drainGrace + node.ShutdownTimeout + brokerShutdown, load: func(a, e []string) (time.Duration, error) {
			c, err := config.LoadBroker(a, e)
			if err != nil {
				return 0, err
			}
			return c.WHEP.DrainTimeout, nil
		}},
	}
	for _, l := range ls {
		_, err := l.load([]string{"--help"}, nil)
		var he *config.HelpError
		if !errors.As(err, &he) {
			t.Fatalf("%s --help: %v", l.name, err)
		}
		l.usage = he.Usage
	}
	return ls
}

// checkEnvNames fails for a WHEPCAST_ variable the binary does not know
// (the loaders ignore unknown ones: a typo would go unnoticed).
func (l *loader) checkEnvNames(t *testing.T, where string, env []string) {
	t.Helper()
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "WHEPCAST_") {
			t.Errorf("%s: %s is not a WHEPCAST_ variable", where, k)
		} else if !strings.Contains(l.usage, "["+k+"]") {
			t.Errorf("%s: %s is not a variable of %s (see %s --help)", where, k, l.name, l.name)
		}
	}
}

// TestDeploySystemd checks the systemd units: restart and stop settings,
// an environment file beside each unit, and a command line and environment
// that the binary loads, with a stop timeout above its drain.
func TestDeploySystemd(t *testing.T) {
	units, _ := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	if len(units) != 2 {
		t.Fatalf("units in deploy/systemd: %q, want the broker's and the whep-node's", units)
	}
	ls := loaders(t)
	seen := map[string]bool{}
	for _, path := range units {
		t.Run(filepath.Base(path), func(t *testing.T) {
			u := parseUnit(t, path)
			for key, want := range map[string]string{
				"Service.Restart": "on-failure", "Service.KillSignal": "SIGTERM", "Service.Type": "exec",
				"Service.NoNewPrivileges": "yes", "Install.WantedBy": "multi-user.target",
			} {
				if got := u.get(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			argv := strings.Fields(u.get("Service.ExecStart"))
			if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
				t.Fatalf("ExecStart %q", u.get("Service.ExecStart"))
			}
			l := ls[filepath.Base(argv[0])]
			if l == nil {
				t.Fatalf("ExecStart runs %s, want whepcast-broker or whep-node", argv[0])
			}
			seen[l.name] = true
			for _, a := range argv[1:] {
				if strings.ContainsAny(a, `$"'\%`) {
					t.Fatalf("ExecStart argument %q: keep the command line literal (settings go to the environment file)", a)
				}
			}
			envFile := u.get("Service.EnvironmentFile")
			if filepath.Dir(envFile) != "/etc/whepcast" || filepath.Ext(envFile) != ".env" {
				t.Fatalf("EnvironmentFile=%q, want /etc/whepcast/NAME.env", envFile)
			}
			env := readEnvFile(t, filepath.Join(deployDir, "systemd", filepath.Base(envFile)))
			l.checkEnvNames(t, envFile, env)
			drain, err := l.load(argv[1:], env)
			if err != nil {
				t.Fatalf("%s with ExecStart's flags and %s: %v", l.name, envFile, err)
			}
			if drain <= 0 {
				t.Fatalf("drain timeout %v", drain)
			}
			stop, err := systemdDuration(u.get("Service.TimeoutStopSec"))
			if err != nil {
				t.Fatalf("TimeoutStopSec: %v", err)
			}
			if need := drain + l.stop + stopMarginFloor; stop < need {
				t.Errorf("TimeoutStopSec=%v, want at least %v (drain %v + shutdown %v + margin)", stop, need, drain, l.stop)
			}
		})
	}
	if !seen["broker"] || !seen["whep-node"] {
		t.Fatalf("units for %v, want broker and whep-node", seen)
	}
}

// unit is a parsed systemd unit: "Section.Key" → values, in order.
type unit map[string][]string

// get returns the last value of key (systemd's rule for single values).
func (u unit) get(key string) string {
	v := u[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	var cont strings.Builder
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if cont.Len() > 0 {
			line = cont.String() + " " + line
			cont.Reset()
		}
		if strings.HasSuffix(line, `\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", path, n+1, line)
			}
			key := section + "." + strings.TrimSpace(k)
			u[key] = append(u[key], strings.TrimSpace(v))
		}
	}
	return u
}

// systemdDuration parses a systemd time span such as 75s, 2min or 90.
func systemdDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(strings.ReplaceAll(s, "min", "m"))
}

// readEnvFile reads KEY=VALUE lines, skipping blank lines and comments.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("environment file: %v", err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); !ok || k == "" {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// k8sDoc is one document of a manifest.
type k8sDoc struct {
	path string
	obj  map[string]any
}

func (d k8sDoc) kind() string { s, _ := d.obj["kind"].(string); return s }
func (d k8sDoc) name() string { s, _ := dig(d.obj, "metadata", "name").(string); return s }

// dig follows keys (string: map key, int: list index) and returns what is
// there, or nil.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

// TestDeployKubernetes parses every YAML file of deploy/ and checks the
// whep-node Deployment: probes on /readyz and /healthz, ports that match
// the configuration, an environment the node loads, a termination grace
// period above preStop + drain + shutdown, and a Service and Ingress that
// point at it.
func TestDeployKubernetes(t *testing.T) {
	var docs []k8sDoc
	err := filepath.WalkDir(deployDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", path, i+1, err)
			}
			if obj == nil {
				continue
			}
			d := k8sDoc{path: path, obj: obj}
			if v, _ := obj["apiVersion"].(string); v == "" || d.kind() == "" || d.name() == "" {
				t.Fatalf("%s: document %d has no apiVersion, kind or metadata.name", path, i+1)
			}
			docs = append(docs, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(kind, name string) map[string]any {
		for _, d := range docs {
			if d.kind() == kind && d.name() == name {
				return d.obj
			}
		}
		return nil
	}
	dep := find("Deployment", "whep-node")
	if dep == nil {
		t.Fatalf("no Deployment whep-node among %d documents", len(docs))
	}
	pod := dig(dep, "spec", "template", "spec")
	if dig(pod, "hostNetwork") != true || dig(pod, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Errorf("pod: hostNetwork %v, dnsPolicy %v", dig(pod, "hostNetwork"), dig(pod, "dnsPolicy"))
	}
	podLabels, _ := dig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	containers := list(dig(pod, "containers"))
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := dig(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
		if got := dig(c, probe, "httpGet", "port"); got != "http" {
			t.Errorf("%s port %v, want the http port", probe, got)
		}
	}
	ports := map[string]string{} // name → "port/protocol"
	for _, p := range list(dig(c, "ports")) {
		name, _ := dig(p, "name").(string)
		proto, _ := dig(p, "protocol").(string)
		port, _ := dig(p, "containerPort").(int)
		ports[name] = strconv.Itoa(port) + "/" + proto
	}

	// The environment: the ConfigMaps of envFrom, then env (a field of the
	// pod's status gets a sample value).
	l := loaders(t)["whep-node"]
	var env []string
	for _, from := range list(dig(c, "envFrom")) {
		name, _ := dig(from, "configMapRef", "name").(string)
		if name == "" {
			continue
		}
		cm := find("ConfigMap", name)
		if cm == nil {
			t.Fatalf("envFrom ConfigMap %q is not in deploy/", name)
		}
		data, _ := dig(cm, "data").(map[string]any)
		for k, v := range data {
			s, ok := v.(string)
			if !ok {
				t.Fatalf("ConfigMap %s: %s is not a string", name, k)
			}
			env = append(env, k+"="+s)
		}
	}
	for _, e := range list(dig(c, "env")) {
		name, _ := dig(e, "name").(string)
		switch v := dig(e, "value").(type) {
		case string:
			env = append(env, name+"="+v)
		default:
			if dig(e, "valueFrom", "fieldRef", "fieldPath") != "status.hostIP" {
				t.Fatalf("env %s: want a value or status.hostIP", name)
			}
			env = append(env, name+"=10.1.2.3")
		}
	}
	l.checkEnvNames(t, "Deployment whep-node", env)
	var args []string
	for _, a := range list(dig(c, "args")) {
		args = append(args, a.(string))
	}
	cfg, err := config.LoadNode(args, env)
	if err != nil {
		t.Fatalf("whep-node with the Deployment's args and environment: %v", err)
	}
	for _, p := range []struct{ name, addr, proto string }{
		{"http", cfg.HTTPAddr, "TCP"}, {"ice-udp", cfg.WHEP.ICEUDPAddr, "UDP"},
	} {
		_, port, err := net.SplitHostPort(p.addr)
		if err != nil || ports[p.name] != port+"/"+p.proto {
			t.Errorf("container port %s is %q, the node listens on %s/%s", p.name, ports[p.name], p.addr, p.proto)
		}
	}
	if len(cfg.WHEP.PublicIPs) != 1 || cfg.WHEP.PublicIPs[0] != "10.1.2.3" {
		t.Errorf("public IP %v, want the node's address", cfg.WHEP.PublicIPs)
	}

	grace, _ := dig(pod, "terminationGracePeriodSeconds").(int)
	preStop, _ := dig(c, "lifecycle", "preStop", "sleep", "seconds").(int)
	if preStop <= 0 {
		t.Errorf("no preStop sleep")
	}
	need := time.Duration(preStop)*time.Second + cfg.WHEP.DrainTimeout + l.stop + stopMarginFloor
	if cfg.WHEP.DrainTimeout <= 0 || time.Duration(grace)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %d, want at least %v (preStop %ds + drain %v + shutdown %v + margin)",
			grace, need, preStop, cfg.WHEP.DrainTimeout, l.stop)
	}

	// The Service selects the pods and targets the http port; the Ingress
	// routes to the Service's port.
	svc := find("Service", "whep-node")
	if svc == nil {
		t.Fatal("no Service whep-node")
	}
	sel, _ := dig(svc, "spec", "selector").(map[string]any)
	if len(sel) == 0 {
		t.Fatal("Service without a selector")
	}
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not select the pods (%v)", k, v, podLabels)
		}
	}
	svcPorts := map[string]bool{}
	for _, p := range list(dig(svc, "spec", "ports")) {
		if dig(p, "targetPort") != "http" || dig(p, "protocol") != "TCP" {
			t.Errorf("Service port %v: want targetPort http over TCP (ICE does not go through the Service)", p)
		}
		name, _ := dig(p, "name").(string)
		svcPorts[name] = true
	}
	if ing := find("Ingress", "whep-node"); ing != nil {
		for _, r := range list(dig(ing, "spec", "rules")) {
			for _, p := range list(dig(r, "http", "paths")) {
				be := dig(p, "backend", "service")
				port, _ := dig(be, "port", "name").(string)
				if dig(be, "name") != "whep-node" || !svcPorts[port] {
					t.Errorf("Ingress backend %v: want the whep-node Service's port", be)
				}
			}
		}
	}
}
