package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/whep"
)

// TestWHEPConfigMapsEveryField sets every WHEP setting and finds each in
// the whep.Config, the relay.Config (Relay) or the export.Config (Export),
// under the same name.
func TestWHEPConfigMapsEveryField(t *testing.T) {
	var w WHEP
	v := reflect.ValueOf(&w).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 1.5)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{v.Type().Field(i).Name}))
		default:
			t.Fatalf("field %s: kind %s not covered", v.Type().Field(i).Name, f.Kind())
		}
	}
	got, rel, exp := reflect.ValueOf(w.Config()), reflect.ValueOf(w.Relay()), reflect.ValueOf(w.Export())
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		found := false
		for _, c := range []reflect.Value{got, rel, exp} {
			g := c.FieldByName(name)
			if !g.IsValid() {
				continue
			}
			found = true
			if g.Kind() == reflect.String && g.String() != v.Field(i).String() ||
				g.Kind() != reflect.String && !reflect.DeepEqual(g.Interface(), v.Field(i).Interface()) {
				t.Errorf("%s: %s has %v, want %v", name, c.Type(), g.Interface(), v.Field(i).Interface())
			}
		}
		if !found {
			t.Errorf("none of whep.Config, relay.Config and export.Config has a field %s", name)
		}
	}
}

// TestWHEPDefaultsAreWHEPs checks that the default settings are package
// whep's defaults.
func TestWHEPDefaultsAreWHEPs(t *testing.T) {
	n, err := LoadNode(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := n.WHEP.Config()
	want := whep.Config{
		ICEUDPAddr:             whep.DefaultICEUDPAddr,
		UDPGSO:                 whep.DefaultUDPGSO,
		DirectSRTP:             whep.DefaultDirectSRTP,
		ICEDisconnectedTimeout: whep.DefaultICEDisconnectedTimeout,
		ICEFailedTimeout:       whep.DefaultICEFailedTimeout,
		WaitTimeout:            whep.DefaultWaitTimeout,
		MaxWaiting:             whep.DefaultMaxWaiting,
		Start:                  relay.StartGOP,
		AllowOrigin:            whep.DefaultAllowOrigin,
		DrainTimeout:           whep.DefaultDrainTimeout,
	}
	got.PublicIPs, got.ICEServers, got.Tokens, got.AdminTokens = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
	if r, want := n.WHEP.Relay(), (relay.Config{Start: relay.StartGOP, ReplayRate: relay.DefaultReplayRate, AudioGroupPadding: whep.DefaultUDPGSO}); !reflect.DeepEqual(r, want) {
		t.Fatalf("relay defaults\n got %+v\nwant %+v", r, want)
	}
}

// TestReplayRate loads --replay-rate and WHEPCAST_WHEP_REPLAY_RATE into
// the relay.Config and rejects the rates relay.New rejects.
func TestReplayRate(t *testing.T) {
	n, err := LoadNode([]string{"--replay-rate", "2.5"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.WHEP.Relay().ReplayRate; got != 2.5 {
		t.Fatalf("flag: replay rate %g, want 2.5", got)
	}
	n, err = LoadNode(nil, []string{"WHEPCAST_WHEP_REPLAY_RATE=8"})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.WHEP.Relay().ReplayRate; got != 8 {
		t.Fatalf("environment: replay rate %g, want 8", got)
	}
	for _, bad := range []string{"1", "0.5", "0", "-2", "1001", "NaN"} {
		if _, err := LoadNode([]string{"--replay-rate", bad}, nil); err == nil || !strings.Contains(err.Error(), "whep.replay-rate: must be more than 1") {
			t.Errorf("--replay-rate %s: %v", bad, err)
		}
	}
}

// TestAdminToken loads --admin-token (repeatable) and
// WHEPCAST_WHEP_ADMIN_TOKEN (comma-separated) into the whep.Config.
func TestAdminToken(t *testing.T) {
	n, err := LoadNode([]string{"--admin-token", "a1", "--admin-token", "a2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.WHEP.Config().AdminTokens; !reflect.DeepEqual(got, []string{"a1", "a2"}) {
		t.Fatalf("flags: admin tokens %q", got)
	}
	n, err = LoadNode(nil, []string{"WHEPCAST_WHEP_ADMIN_TOKEN=e1,e2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.WHEP.Config().AdminTokens; !reflect.DeepEqual(got, []string{"e1", "e2"}) {
		t.Fatalf("environment: admin tokens %q", got)
	}
	if _, err := LoadNode([]string{"--admin-token", " "}, nil); err == nil || !strings.Contains(err.Error(), "whep.admin-token: must not be empty") {
		t.Fatalf("empty admin token: %v", err)
	}
}
