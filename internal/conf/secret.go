package conf

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a credential that must never appear in logs, status output or
// errors. In YAML it is written as a map naming where the value is read
// from, so the value itself is never in the file:
//
//	password: {env: MQTT_PASSWORD}
//	password: {file: /run/secrets/mqtt}
//
// The value is read by Resolve, at connect time, not when the config is
// validated.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// IsSet reports whether a source for the secret is configured.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Validate checks that at most one source is named.
func (s Secret) Validate() error {
	if s.Env != "" && s.File != "" {
		return errors.New("give either env or file, not both")
	}
	return nil
}

// Resolve reads the secret. A trailing newline in a file is dropped, as
// container secret mounts usually add one. Errors name the source, never the
// value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("secret: environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// String never shows the value.
func (s Secret) String() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "<unset>"
}
