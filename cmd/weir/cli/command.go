package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/conf"
)

// commandVerbs: weir command sign -caller NAME (-key-env VAR | -key-file
// PATH) [-kind write|alarm] [FILE]
//
// It reads one command (a JSON object; FILE, or stdin without it or with
// "-"), adds issued_at (now, unix ms) and a random id when they are
// missing, and prints the signed envelope to publish on the command
// topic (internal/cmdproof). The key is read from the environment or a
// file, never from the command line, where other users could see it.
func commandVerbs() []verb {
	return []verb{{name: "sign", args: "-caller NAME (-key-env VAR | -key-file PATH) [flags] [FILE]",
		summary: "sign a write or alarm command for MQTT and print the message to publish", define: defineCommandSign}}
}

func defineCommandSign(fs *flag.FlagSet) body {
	caller := fs.String("caller", "", "the caller name the gateway knows the key by (callers[].name)")
	keyEnv := fs.String("key-env", "", "environment variable holding the caller's key (hex or base64)")
	keyFile := fs.String("key-file", "", "file holding the caller's key (hex or base64)")
	kind := fs.String("kind", cmdproof.KindWrite, "write (write_commands) or alarm (alarms.commands)")
	stamp := fs.Bool("stamp", true, "add issued_at (now) and a random id when the command has none")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 1 {
			fmt.Fprintln(stderr, "weir command sign: one FILE at most")
			return errUsage
		}
		if *caller == "" || (*keyEnv == "") == (*keyFile == "") {
			fmt.Fprintln(stderr, "weir command sign: -caller and exactly one of -key-env and -key-file are required")
			return errUsage
		}
		if *kind != cmdproof.KindWrite && *kind != cmdproof.KindAlarm {
			fmt.Fprintln(stderr, "weir command sign: -kind is write or alarm")
			return errUsage
		}
		in := io.Reader(os.Stdin)
		if len(pos) == 1 && pos[0] != "-" {
			f, err := os.Open(pos[0])
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		cmd, err := io.ReadAll(io.LimitReader(in, cmdproof.MaxMessage+1))
		if err != nil {
			return fmt.Errorf("read command: %w", err)
		}
		if len(cmd) > cmdproof.MaxMessage {
			return fmt.Errorf("command is longer than %d bytes", cmdproof.MaxMessage)
		}
		key, err := readCommandKey(*keyEnv, *keyFile)
		if err != nil {
			return err
		}
		if *stamp {
			if cmd, err = stampCommand(cmd, time.Now()); err != nil {
				return err
			}
		}
		msg, err := cmdproof.Sign(key, *kind, *caller, cmd)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", msg)
		return err
	}
}

// readCommandKey reads and decodes the key as the gateway does; errors
// name the source, never the key.
func readCommandKey(env, file string) ([]byte, error) {
	if file != "" {
		abs, err := filepath.Abs(file) // a secret reference is an absolute path
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		file = abs
	}
	secret := conf.Secret{Env: env, File: file}
	s, err := secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	k, err := cmdproof.DecodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", secret, err)
	}
	return k, nil
}

// stampCommand adds issued_at and id to a command object that lacks
// them; the result is then re-encoded (keys sorted), and that is what
// gets signed. A command that has both is signed byte for byte.
func stampCommand(cmd []byte, now time.Time) ([]byte, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(cmd))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, errors.New("the command must be one JSON object")
	}
	if dec.More() {
		return nil, errors.New("the command has data after its JSON object")
	}
	_, hasTime := obj["issued_at"]
	_, hasID := obj["id"]
	if hasTime && hasID {
		return cmd, nil // signed as written
	}
	if !hasTime {
		obj["issued_at"] = json.RawMessage(fmt.Sprint(now.UnixMilli()))
	}
	if !hasID {
		var b [16]byte
		_, _ = rand.Read(b[:])
		obj["id"] = json.RawMessage(`"` + hex.EncodeToString(b[:]) + `"`)
	}
	return json.Marshal(obj)
}
