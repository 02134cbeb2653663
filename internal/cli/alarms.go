package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-edge/weir/alarms"
)

const alarmsUsage = `usage: weir alarms list     [-api URL] [-state S] [-priority P] [-shelved true|false]
       weir alarms ack      [-api URL] [-comment TEXT] NAME
       weir alarms shelve   [-api URL] (-for DURATION | -until RFC3339) [-reason TEXT] NAME
       weir alarms unshelve [-api URL] [-reason TEXT] NAME`

// alarmsCmd lists, acknowledges and shelves alarms through a running
// gateway's HTTP API (/api/v1/alarms).
func alarmsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, alarmsUsage)
		return errUsage
	}
	verb := args[0]
	fs := newFlagSet("alarms "+verb, stderr)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the gateway's HTTP API")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
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
	default:
		fmt.Fprintf(stderr, "weir alarms: unknown action %q\n%s\n", verb, alarmsUsage)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	base, err := url.Parse(strings.TrimRight(*api, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(stderr, "weir alarms: -api must be an http:// or https:// URL, got %q\n", *api)
		return errUsage
	}
	client := &http.Client{Timeout: *timeout}
	if verb == "list" {
		if fs.NArg() != 0 {
			fmt.Fprintln(stderr, alarmsUsage)
			return errUsage
		}
		q := url.Values{}
		for k, v := range map[string]string{"state": state, "priority": prio, "shelved": shelved} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var out struct {
			Alarms []alarms.Alarm `json:"alarms"`
		}
		if err := alarmsCall(ctx, client, "GET", base.String()+"/api/v1/alarms?"+q.Encode(), nil, &out); err != nil {
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
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, alarmsUsage)
		return errUsage
	}
	name := fs.Arg(0)
	if err := alarms.ValidName(name); err != nil {
		return err
	}
	body := map[string]string{}
	switch verb {
	case "ack":
		body["comment"] = comment
	case "shelve":
		if (dur == 0) == (until == "") {
			fmt.Fprintln(stderr, "weir alarms shelve: set one of -for and -until")
			return errUsage
		}
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
	if err := alarmsCall(ctx, client, "POST", base.String()+"/api/v1/alarms/"+url.PathEscape(name)+"/"+verb, b, &a); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s", a.Name, a.State)
	if a.Shelved && a.ShelvedUntil != nil {
		fmt.Fprintf(stdout, ", shelved until %s", a.ShelvedUntil.Local().Format(time.DateTime))
	}
	fmt.Fprintln(stdout)
	return nil
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
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
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
