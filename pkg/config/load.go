package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// LoadBroker builds the broker configuration from defaults, the optional
// --config file, the environment env (os.Environ format, "KEY=value") and the
// command-line arguments args (without the program name), then validates it.
// It returns a *HelpError (errors.Is(err, ErrHelp)) for --help, and errors
// wrapping ErrInvalid for bad input. It reads no process state but the config
// file.
func LoadBroker(args, env []string) (*Broker, error) {
	var file struct {
		Broker `mapstructure:",squash"`
		// UDPIngest is Broker.UDPIngest as STREAM=ADDR strings.
		UDPIngest []string `mapstructure:"udp-ingest"`
	}
	if err := load("broker", brokerOptions(), args, env, &file); err != nil {
		return nil, err
	}
	cfg := file.Broker
	cfg.UDPIngest = nil
	for _, s := range file.UDPIngest {
		u, err := ParseUDPIngest(s)
		if err != nil {
			return nil, err
		}
		cfg.UDPIngest = append(cfg.UDPIngest, u)
	}
	if cfg.Demo && cfg.WHEPAddr == "" {
		// The demo is a complete system: it plays what it publishes.
		cfg.WHEPAddr = DemoWHEPAddr
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// DemoWHEPAddr is where --demo serves WHEP and the player when whep-addr is
// not set.
const DemoWHEPAddr = ":8889"

// LoadNode builds the whep-node configuration like LoadBroker does.
func LoadNode(args, env []string) (*Node, error) {
	var cfg Node
	if err := load("whep-node", nodeOptions(), args, env, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// ParseUDPIngest parses a --udp-ingest value, STREAM=ADDR. The stream name
// and the address are checked by Validate.
func ParseUDPIngest(s string) (UDPIngest, error) {
	stream, addr, ok := strings.Cut(s, "=")
	if !ok || stream == "" || addr == "" {
		return UDPIngest{}, fmt.Errorf("%w: udp-ingest: %q is not STREAM=ADDR", ErrInvalid, s)
	}
	return UDPIngest{Stream: stream, Addr: addr}, nil
}

// load fills out (a struct with mapstructure tags) from the four sources.
func load(prog string, opts []option, args, env []string, out any) error {
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	configPath := fs.String("config", "", "YAML configuration file ["+envConfig+"]")
	for _, o := range opts {
		defineFlag(fs, o)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return &HelpError{Usage: usage(prog, fs)}
		}
		return fmt.Errorf("%w: %w (see --help)", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see --help)", ErrInvalid, fs.Arg(0))
	}
	vars := envMap(env)

	v := viper.New()
	for _, o := range opts {
		v.SetDefault(o.key, o.def)
	}
	path := *configPath
	if !fs.Changed("config") {
		path = vars[envConfig]
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w: config file: %w", ErrInvalid, err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%w: config file %s: %w", ErrInvalid, path, err)
		}
	}
	for _, o := range opts {
		if val, ok := vars[o.envName()]; ok {
			v.Set(o.key, val)
		}
	}
	for _, o := range opts {
		if fs.Changed(o.flag) {
			v.Set(o.key, flagValue(fs, o))
		}
	}
	err := v.UnmarshalExact(out, func(c *mapstructure.DecoderConfig) {
		c.DecodeHook = mapstructure.ComposeDecodeHookFunc(durationHook, sizeHook, c.DecodeHook)
	})
	if err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, decodeMessage(err))
	}
	return nil
}

// decodeMessage turns mapstructure's multi-line error into one line.
func decodeMessage(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "* "))
		if l == "" || strings.HasPrefix(l, "decoding failed due to") || strings.HasSuffix(l, "error(s) decoding:") {
			continue
		}
		lines = append(lines, strings.ReplaceAll(l, "'' has invalid keys", "unknown keys"))
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}

func envMap(env []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			m[k] = v
		}
	}
	return m
}

func defineFlag(fs *pflag.FlagSet, o option) {
	u := o.usage + " [" + o.envName() + "]"
	switch o.kind {
	case kindString:
		fs.String(o.flag, o.def.(string), u)
	case kindInt:
		fs.Int(o.flag, o.def.(int), u)
	case kindBool:
		fs.Bool(o.flag, o.def.(bool), u)
	case kindDuration:
		fs.Duration(o.flag, o.def.(time.Duration), u)
	case kindStrings:
		fs.StringArray(o.flag, nil, u)
	case kindSize:
		fs.String(o.flag, formatSize(o.def.(int64)), u)
	case kindFloat:
		fs.Float64(o.flag, o.def.(float64), u)
	}
}

// flagValue returns the value of o's flag for viper.Set. The flag set only
// holds flags defined by defineFlag, so the typed getters cannot fail.
func flagValue(fs *pflag.FlagSet, o option) any {
	var (
		v   any
		err error
	)
	switch o.kind {
	case kindInt:
		v, err = fs.GetInt(o.flag)
	case kindBool:
		v, err = fs.GetBool(o.flag)
	case kindDuration:
		v, err = fs.GetDuration(o.flag)
	case kindStrings:
		v, err = fs.GetStringArray(o.flag)
	case kindFloat:
		v, err = fs.GetFloat64(o.flag)
	default:
		v, err = fs.GetString(o.flag)
	}
	if err != nil {
		return fs.Lookup(o.flag).Value.String()
	}
	return v
}

func usage(prog string, fs *pflag.FlagSet) string {
	return "Usage: " + prog + " [flags]\n\n" +
		"Every flag can also be set in the YAML --config file and in the\n" +
		"environment variable shown in brackets (lists comma-separated).\n" +
		"Precedence: flags > environment > file > defaults.\n\n" +
		"Flags:\n" + fs.FlagUsages()
}

// sizeHook decodes a string into an int64 as a size in bytes.
func sizeHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Int64 || to == reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	return parseSize(data.(string))
}

// durationHook decodes a string into a time.Duration with an error that
// names the value.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("invalid duration %q (want e.g. 500ms, 30s, 1m)", data)
	}
	return d, nil
}
