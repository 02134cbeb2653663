package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/security"
)

// tokenVerbs manage the API tokens of a data dir (DATA_DIR/auth/tokens)
// directly on the file: a running gateway re-reads it, so a token created
// or revoked here takes effect at its next request, without a restart.
func tokenVerbs() []verb {
	return []verb{
		{name: "create", args: "-user U -role R -expires DURATION [flags] [-data-dir DIR | DIR]", summary: "create an API token and print it (the only time it is shown)", define: defineTokenCreate},
		{name: "list", args: "[-data-dir DIR | DIR]", summary: "list the tokens: id, user, role, created, expires, state (never the tokens)", define: defineTokenList},
		{name: "revoke", args: "[-data-dir DIR] ID [DIR]", summary: "revoke a token by its id", define: defineTokenRevoke},
	}
}

const tokenDirHelp = "the gateway's data dir is DIR (default " + config.DefaultDataDir + ", or the demo's when that does not exist)"

// tokenDir is DIR (-data-dir DIR, as weir alarms takes it, or the
// positional DIR), or the local data dir; extra positional arguments, or
// DIR given both ways, are a usage error.
func tokenDir(verb, flagDir string, pos []string, want int, stderr io.Writer) (string, bool) {
	if len(pos) > want+1 {
		fmt.Fprintf(stderr, "weir token %s: too many arguments; %s\n", verb, tokenDirHelp)
		return "", false
	}
	if len(pos) == want+1 {
		if flagDir != "" && flagDir != pos[want] {
			fmt.Fprintf(stderr, "weir token %s: give the data dir once: -data-dir %s or %s\n", verb, flagDir, pos[want])
			return "", false
		}
		return pos[want], true
	}
	if flagDir != "" {
		return flagDir, true
	}
	return localDataDir(), true
}

// dataDirFlag defines -data-dir on a token verb.
func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", "", "the gateway's data dir (as the positional DIR); "+tokenDirHelp)
}

// existingTokens opens the token file of a data dir that list and revoke
// read: a mistyped DIR (or one that never had a token) is said so, rather
// than shown as an empty table.
func existingTokens(dir string) (*auth.TokenStore, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no data dir %s (give the gateway's data dir: weir token list DIR)", dir)
	} else if err != nil {
		return nil, err
	}
	authDir := filepath.Dir(auth.TokensPath(dir))
	if _, err := os.Stat(authDir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: no token was ever created there (is it the gateway's data dir?)", dir, filepath.Base(authDir)+"/")
	} else if err != nil {
		return nil, err
	}
	return auth.OpenTokens(dir, nil)
}

func defineTokenCreate(fs *flag.FlagSet) body {
	user := fs.String("user", "", "the user the token acts as (required; write policies name it as api:USER)")
	role := fs.String("role", "", "viewer, operator, engineer or admin (required)")
	expires := fs.Duration("expires", 0, fmt.Sprintf("lifetime, e.g. 720h (required; at most %s)", auth.MaxTokenLifetime))
	note := fs.String("note", "", "what the token is for, shown by weir token list")
	dataDir := dataDirFlag(fs)
	cli := fs.Bool("cli", false, "save the token as DIR/auth/cli-token (0600) for weir alarms on this machine instead of printing it")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		dir, ok := tokenDir("create", *dataDir, pos, 0, stderr)
		if !ok {
			return errUsage
		}
		if *user == "" || *role == "" || *expires == 0 {
			fmt.Fprintln(stderr, "weir token create: -user, -role and -expires are required")
			return errUsage
		}
		r, err := security.ParseRole(*role)
		if err != nil {
			return err
		}
		store, err := auth.OpenTokens(dir, nil)
		if err != nil {
			return err
		}
		tok, info, err := store.Create(*user, r, *expires, *note)
		if err != nil {
			return err
		}
		if *cli {
			if err := writeCLIToken(dir, tok); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "token %s for %s (%s), expires %s, saved as %s\n", info.ID, info.User, info.Role,
				info.Expires.Local().Format(time.DateTime), cliTokenFile(dir))
			return nil
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintf(stderr, "token %s for %s (%s), expires %s. It is shown only now: store it in a secret manager.\n",
			info.ID, info.User, info.Role, info.Expires.Local().Format(time.DateTime))
		return nil
	}
}

func defineTokenList(fs *flag.FlagSet) body {
	dataDir := dataDirFlag(fs)
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		dir, ok := tokenDir("list", *dataDir, pos, 0, stderr)
		if !ok {
			return errUsage
		}
		store, err := existingTokens(dir)
		if err != nil {
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tROLE\tCREATED\tEXPIRES\tSTATE\tNOTE")
		for _, t := range store.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Role, t.Created.Local().Format(time.DateTime),
				t.Expires.Local().Format(time.DateTime), t.State(now), t.Note)
		}
		return tw.Flush()
	}
}

func defineTokenRevoke(fs *flag.FlagSet) body {
	dataDir := dataDirFlag(fs)
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) == 0 {
			fmt.Fprintln(stderr, "weir token revoke: want the token's ID (weir token list shows them)")
			return errUsage
		}
		dir, ok := tokenDir("revoke", *dataDir, pos, 1, stderr)
		if !ok {
			return errUsage
		}
		if !auth.ValidTokenID(pos[0]) {
			return fmt.Errorf("%q is not a token id (16 hex digits; weir token list shows them)", pos[0])
		}
		store, err := existingTokens(dir)
		if err != nil {
			return err
		}
		// Revoking twice is harmless (exit 0), but says so: the first
		// revocation's time is the one that counts.
		for _, t := range store.List() {
			if t.ID == pos[0] && t.Revoked != nil {
				fmt.Fprintf(stdout, "token %s of %s already revoked (%s)\n", t.ID, t.User, t.Revoked.Local().Format(time.DateTime))
				return nil
			}
		}
		t, err := store.Revoke(pos[0])
		if errors.Is(err, auth.ErrNoToken) {
			return fmt.Errorf("no token %s in %s", pos[0], store.Path())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s of %s revoked\n", t.ID, t.User)
		return nil
	}
}
