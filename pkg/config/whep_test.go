package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/whepcast/whepcast/pkg/relay"
	"github.com/whepcast/whepcast/pkg/whep"
)

// TestWHEPConfigMapsEveryField sets every WHEP setting and finds each in
// the whep.Config, under the same name.
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
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{v.Type().Field(i).Name}))
		default:
			t.Fatalf("field %s: kind %s not covered", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := reflect.ValueOf(w.Config())
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		g := got.FieldByName(name)
		if !g.IsValid() {
			t.Errorf("whep.Config has no field %s", name)
			continue
		}
		if g.Kind() == reflect.String && g.String() != v.Field(i).String() ||
			g.Kind() != reflect.String && !reflect.DeepEqual(g.Interface(), v.Field(i).Interface()) {
			t.Errorf("%s: whep.Config has %v, want %v", name, g.Interface(), v.Field(i).Interface())
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
