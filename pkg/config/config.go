// Package config loads and validates the configuration of cmd/broker and
// cmd/whep-node. It is the only package that touches viper.
//
// # Sources
//
// A configuration is built in four steps, each overriding the one before:
//
//  1. defaults (see the flag usage, `--help`);
//  2. an optional YAML file named by --config (or WHEPCAST_CONFIG), whose keys
//     are the flag names, nested for the "nats", "whep" and "log" groups
//     (see below); unknown keys are rejected;
//  3. environment variables WHEPCAST_KEY, where KEY is the dotted key in upper
//     case with dots and dashes turned into underscores: ingest-addr is
//     WHEPCAST_INGEST_ADDR, nats.url is WHEPCAST_NATS_URL,
//     whep.ice-udp-addr is WHEPCAST_WHEP_ICE_UDP_ADDR, log.level is
//     WHEPCAST_LOG_LEVEL. List values are comma-separated. Unknown WHEPCAST_
//     variables are ignored (the broker and the node share the prefix);
//  4. command-line flags; repeatable flags replace (not extend) the lists of
//     the earlier steps.
//
// Validate then checks the result and reports every problem it finds, each
// prefixed with its key, in one error wrapping ErrInvalid.
//
// # Keys
//
// Flags map to keys as follows: --nats-url, --nats-user, --nats-password,
// --nats-token, --nats-nkey, --nats-creds, --nats-tls-ca, --nats-tls-cert,
// --nats-tls-key are nats.url, nats.user, nats.password, nats.token,
// nats.nkey-file, nats.creds-file, nats.tls-ca, nats.tls-cert, nats.tls-key;
// --log-level and --log-format are log.level and log.format; the WHEP flags
// (--ice-udp-addr, --ice-tcp-addr, --public-ip, --ice-server, --token,
// --token-file, --admin-token, --wait-timeout, --max-waiting, --max-sessions,
// --max-sessions-per-stream, --start, --allow-origin, --drain-timeout) are
// whep.NAME; the whep-node's --max-exports is export.max-exports. Every
// other flag is a top-level key of the same name. A broker file looks like:
//
//	ingest-addr: ":8080"
//	udp-ingest: ["cam1=127.0.0.1:5000"]
//	ingest-token: ["s3cret"]
//	storage: file
//	max-age: 30s
//	max-streams: 100
//	storage-budget: 10GiB
//	nats:
//	  url: nats://nats-1:4222,nats://nats-2:4222
//	  creds-file: /etc/whepcast/broker.creds
//	whep:
//	  ice-udp-addr: ":8189"
//	log:
//	  level: debug
//
// Sizes (max-bytes, storage-budget) are a number of bytes, optionally with a suffix: KiB,
// MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
package config
