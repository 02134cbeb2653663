package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// envName is what a shell accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks that at most one source is named, and that it reads as
// a variable name or an absolute path. Neither is repeated in the message:
// what does not look like a name or a path may be the secret itself,
// pasted where its reference belongs.
func (s Secret) Validate() error {
	switch {
	case s.Env != "" && s.File != "":
		return errors.New("give either env or file, not both")
	case s.Env != "" && !envName.MatchString(s.Env):
		return errors.New("env must name an environment variable (letters, digits and _, not starting with a digit); what is written is not shown, in case it is the secret itself")
	case s.File != "" && !filepath.IsAbs(s.File):
		return errors.New("file must be an absolute path; what is written is not shown, in case it is the secret itself")
	}
	return nil
}

// Resolve reads the secret. A trailing newline in a file is dropped, as
// container secret mounts usually add one. Errors name the source, never the
// value, and wrap pipeline.ErrPermanent: a variable that is not set or a
// file that cannot be read will not appear by retrying.
func (s Secret) Resolve() (string, error) {
	if err := s.Validate(); err != nil {
		return "", Permanent(fmt.Errorf("secret: %w", err))
	}
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
	if s.Validate() != nil {
		return nil // Validate reported it, without repeating what is written
	}
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

// String never shows the value, nor a reference that may be one.
func (s Secret) String() string {
	if s.Validate() != nil {
		return "<invalid reference>"
	}
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "<unset>"
}
