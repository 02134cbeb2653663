package config

// ExpandEnv replaces ${NAME} and ${NAME:-default} in data as Load does,
// line by line, with lookup reading the environment; an unset variable
// without a default is a problem at its line. `weir run --print-config`
// uses it to show the values actually used.
func ExpandEnv(file string, data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	out, ps := expandEnv(file, data, lookup)
	if len(ps) > 0 {
		return nil, ps
	}
	return out, nil
}
