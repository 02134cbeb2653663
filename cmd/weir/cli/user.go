package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/weir-edge/weir/auth"
)

// userVerbs help write the auth.users block.
func userVerbs() []verb {
	return []verb{
		{name: "hash-password", args: "", summary: "read a password (twice on a terminal, else one line of stdin) and print its argon2id hash for auth.users[].password_hash", define: defineHashPassword},
	}
}

// passwordInput reads a password: without echo on a terminal; a variable
// so that tests can answer.
var passwordInput = func(stderr io.Writer) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, auth.MaxPassword+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(stderr, "Password: ")
	p1, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "Again: ")
	p2, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords differ")
	}
	return string(p1), nil
}

func defineHashPassword(fs *flag.FlagSet) body {
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) != 0 {
			fmt.Fprintln(stderr, "weir user hash-password: no arguments; the password is read from the terminal or stdin, never the command line")
			return errUsage
		}
		pw, err := passwordInput(stderr)
		if err != nil {
			return err
		}
		if len(pw) < 12 {
			return errors.New("a password must have at least 12 characters")
		}
		h, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, h)
		return nil
	}
}
