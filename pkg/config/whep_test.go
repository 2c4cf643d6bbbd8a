package config

import (
	"reflect"
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
	got.PublicIPs, got.ICEServers, got.Tokens = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
}
