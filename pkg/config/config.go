// Package config loads and validates the configuration of cmd/broker and
// cmd/whep-node from defaults, an optional YAML file (--config), WHEPCAST_
// environment variables and flags, each overriding the one before; unknown
// file keys are rejected, and Validate reports every problem, each prefixed
// with its key, in one error wrapping ErrInvalid. It is the only package
// that touches viper, and it only maps settings onto the libraries' config
// types, which own their defaults and validation.
//
// Every key with its flag, environment variable and default, and example
// files, are in docs/configuration.md (kept equal to the option table by a
// test).
package config
