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
// value, and wrap pipeline.ErrPermanent: a variable that is not set or a
// file that cannot be read will not appear by retrying.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", Permanent(fmt.Errorf("secret: environment variable %s is not set", s.Env))
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", Permanent(fmt.Errorf("secret: %w", err))
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// Check reads the secret as Resolve will and reports, for `weir validate`,
// what would make it fail or leak: a variable not set or empty, a file
// missing, unreadable or empty (errors), a file other users may read (a
// Warning). Its errors have no path: the caller places them at the key
// holding the secret.
func (s Secret) Check() error {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", s.Env)
		}
		if v == "" {
			return fmt.Errorf("environment variable %s is empty", s.Env)
		}
	case s.File != "":
		b, fi, err := ReadFile("secret file", s.File)
		if err != nil {
			return err
		}
		if strings.TrimRight(string(b), "\r\n") == "" {
			return fmt.Errorf("secret file %s is empty", s.File)
		}
		return TooOpen("secret file", s.File, fi)
	}
	return nil
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
