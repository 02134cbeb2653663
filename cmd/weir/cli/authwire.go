package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
)

// cliTokenFile, under a data dir, holds a token the CLI on this machine
// sends to the running gateway (the demo writes one; weir token create
// -cli writes one). It is 0600 in the 0700 auth directory: whoever can
// read it can also edit the token file next to it.
func cliTokenFile(dataDir string) string { return filepath.Join(dataDir, "auth", "cli-token") }

// writeCLIToken saves tok as dataDir's CLI token, replacing any.
func writeCLIToken(dataDir, tok string) error {
	path := cliTokenFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cli token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cli-token-*")
	if err != nil {
		return fmt.Errorf("cli token: %w", err)
	}
	_, err = tmp.WriteString(tok + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cli token: %w", err)
	}
	return nil
}

// clientToken is the token a CLI command sends to a running gateway: the
// file -token-file names, else $WEIR_TOKEN, else DATA_DIR/auth/cli-token
// of each candidate data dir, else none (the gateway will answer 401).
func clientToken(tokenFile string, dataDirs ...string) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", unwrapPath(err))
		}
		return checkClientToken(strings.TrimSpace(string(b)), tokenFile)
	}
	if t := strings.TrimSpace(os.Getenv("WEIR_TOKEN")); t != "" {
		return checkClientToken(t, "WEIR_TOKEN")
	}
	for _, d := range dataDirs {
		if d == "" {
			continue
		}
		b, err := os.ReadFile(cliTokenFile(d))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cli token: %w", err)
		}
		return checkClientToken(strings.TrimSpace(string(b)), cliTokenFile(d))
	}
	return "", nil
}

// checkClientToken refuses what is not a token, without repeating it.
func checkClientToken(tok, from string) (string, error) {
	if _, err := auth.ParseToken(tok); err != nil {
		return "", fmt.Errorf("%s does not hold a Weir token (weir_…)", from)
	}
	return tok, nil
}

// bearerKey is the context key of the token a CLI request sends.
type bearerKey struct{}

// withClientToken finds the token for a gateway found from dataDir (see
// clientToken; without dataDir the default data dir, then the demo's) and
// returns ctx carrying it for setBearer.
func withClientToken(ctx context.Context, tokenFile, dataDir string) (context.Context, error) {
	dirs := []string{dataDir}
	if dataDir == "" {
		demo, _ := demoDataDir()
		dirs = []string{config.DefaultDataDir, demo}
	}
	tok, err := clientToken(tokenFile, dirs...)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, bearerKey{}, tok), nil
}

// setBearer adds the token withClientToken found, if any, to req.
func setBearer(ctx context.Context, req *http.Request) {
	if tok, _ := ctx.Value(bearerKey{}).(string); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
}
