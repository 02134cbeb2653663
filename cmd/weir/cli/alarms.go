package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/config"
)

// alarmsVerbs list, acknowledge and shelve alarms through a running
// gateway's HTTP API (/api/v1/alarms). The gateway is found from the
// address it writes in its data dir (api.url); -api URL wins.
func alarmsVerbs() []verb {
	return []verb{
		{name: "list", args: "[flags]", summary: "list the alarms", define: func(fs *flag.FlagSet) body { return defineAlarms(fs, "list") }},
		{name: "ack", args: "[flags] NAME", summary: "acknowledge an alarm", define: func(fs *flag.FlagSet) body { return defineAlarms(fs, "ack") }},
		{name: "shelve", args: "(-for DURATION | -until RFC3339) [flags] NAME", summary: "shelve an alarm for a while", define: func(fs *flag.FlagSet) body { return defineAlarms(fs, "shelve") }},
		{name: "unshelve", args: "[flags] NAME", summary: "end an alarm's shelving early", define: func(fs *flag.FlagSet) body { return defineAlarms(fs, "unshelve") }},
	}
}

func defineAlarms(fs *flag.FlagSet, verb string) body {
	api := fs.String("api", "", "base URL of the gateway's HTTP API (default: the address the gateway wrote in its data dir)")
	dataDir := fs.String("data-dir", "", "the running gateway's data dir, where it writes its API address (default "+config.DefaultDataDir+", then the demo's)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	tokenFile := fs.String("token-file", "", "file holding the API token to send (default: $WEIR_TOKEN, then DATA_DIR/auth/cli-token)")
	var state, prio, shelved, comment, reason, until string
	var dur time.Duration
	switch verb {
	case "list":
		fs.StringVar(&state, "state", "", "only alarms in this state: normal, unack, acked, rtn_unack")
		fs.StringVar(&prio, "priority", "", "only alarms of this priority: low, medium, high, critical")
		fs.StringVar(&shelved, "shelved", "", "only shelved (true) or unshelved (false) alarms")
	case "ack":
		fs.StringVar(&comment, "comment", "", "acknowledgement comment")
	case "shelve":
		fs.DurationVar(&dur, "for", 0, "shelve for this long (e.g. 30m)")
		fs.StringVar(&until, "until", "", "shelve until this RFC 3339 time")
		fs.StringVar(&reason, "reason", "", "why the alarm is shelved")
	case "unshelve":
		fs.StringVar(&reason, "reason", "", "why shelving ends early")
	}
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		if verb == "list" && len(pos) != 0 || verb != "list" && len(pos) != 1 {
			fmt.Fprintf(stderr, "weir alarms %s: want %s\n", verb, map[bool]string{true: "no arguments", false: "one alarm NAME"}[verb == "list"])
			return errUsage
		}
		if verb == "shelve" && (dur == 0) == (until == "") {
			fmt.Fprintln(stderr, "weir alarms shelve: set one of -for and -until")
			return errUsage
		}
		ctx, base, client, err := gatewayTarget(ctx, "weir alarms", *api, *dataDir, *tokenFile, *timeout, stderr) // trusts the gateway's published certificate (apiclient.go)
		if err != nil {
			return err
		}
		err = alarmsVerb(ctx, client, base.String(), verb, pos, alarmsArgs{state, prio, shelved, comment, reason, until, dur}, stdout)
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			if *api != "" {
				return fmt.Errorf("no gateway answers at %s (%v)", base.Host, opErr.Err)
			}
			return fmt.Errorf("no gateway answers at %s, the address its data dir names: it may have stopped without removing it (kill -9, power loss); start it, or give the running one's --data-dir or -api URL", base.Host)
		}
		return err
	}
}

type alarmsArgs struct {
	state, prio, shelved, comment, reason, until string
	dur                                          time.Duration
}

func alarmsVerb(ctx context.Context, client *http.Client, base, verb string, pos []string, args alarmsArgs, stdout io.Writer) error {
	state, prio, shelved, comment, reason, until, dur := args.state, args.prio, args.shelved, args.comment, args.reason, args.until, args.dur
	if verb == "list" {
		return listAlarms(ctx, client, base, map[string]string{"state": state, "priority": prio, "shelved": shelved}, stdout)
	}
	name := pos[0]
	if err := alarms.ValidName(name); err != nil {
		return err
	}
	body := map[string]string{}
	switch verb {
	case "ack":
		body["comment"] = comment
	case "shelve":
		if dur != 0 {
			body["duration"] = dur.String()
		} else {
			body["until"] = until
		}
		body["reason"] = reason
	case "unshelve":
		body["reason"] = reason
	}
	b, _ := json.Marshal(body)
	var a alarms.Alarm
	if err := alarmsCall(ctx, client, "POST", base+"/api/v1/alarms/"+url.PathEscape(name)+"/"+verb, b, &a); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s", a.Name, a.State)
	if a.Shelved && a.ShelvedUntil != nil {
		fmt.Fprintf(stdout, ", shelved until %s", a.ShelvedUntil.Local().Format(time.DateTime))
	}
	fmt.Fprintln(stdout)
	return nil
}

func listAlarms(ctx context.Context, client *http.Client, base string, filter map[string]string, stdout io.Writer) error {
	q := url.Values{}
	for k, v := range filter {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		Alarms []alarms.Alarm `json:"alarms"`
	}
	if err := alarmsCall(ctx, client, "GET", base+"/api/v1/alarms?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPRIORITY\tSHELVED\tMESSAGE")
	for _, a := range out.Alarms {
		sh := "-"
		if a.Shelved && a.ShelvedUntil != nil {
			sh = "until " + a.ShelvedUntil.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.State, a.Priority, sh, a.Message)
	}
	return tw.Flush()
}

// alarmsCall sends one request and decodes a 200 answer into out; any
// other status is an error carrying the API's message.
func alarmsCall(ctx context.Context, client *http.Client, method, u string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	setBearer(ctx, req)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: the gateway wants a token: give -token-file FILE or $WEIR_TOKEN, or save one as DATA_DIR/auth/cli-token with weir token create -cli", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, u, err)
	}
	return nil
}
