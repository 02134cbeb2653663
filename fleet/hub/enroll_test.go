package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weir-edge/weir/fleet/hub"
	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

func TestEnrollOnce(t *testing.T) {
	h := hubtest.Start(t)
	tok := h.Token(t, "s1", "eu")
	s, err := h.EnrollWith("s1", tok)
	if err != nil {
		t.Fatalf("first enrolment: %v", err)
	}
	if len(s.Trust.Keys()) != 1 || !slicesEq(s.Groups, []string{"eu"}) {
		t.Fatalf("enrolled site: keys %v groups %v", s.Trust.Keys(), s.Groups)
	}
	if _, err := h.EnrollWith("s1", tok); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second enrolment with the same token: %v, want refused as used", err)
	}
	tok2 := h.Token(t, "s2")
	if _, err := h.EnrollWith("s3", tok2); err == nil {
		t.Fatal("token for s2 enrolled s3")
	}
	if _, err := h.EnrollWith("s2", tok2); err == nil {
		t.Fatal("token tried for another site was still usable")
	}
}

func TestEnrollExpired(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	h := hubtest.StartWith(t, t.TempDir(), func(c *hub.Config) { c.Now = func() time.Time { return clock() } })
	ctx := context.Background()
	tok, err := h.CreateToken(ctx, "s1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock = func() time.Time { return now.Add(2 * time.Hour) }
	if _, err := h.EnrollWith("s1", tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v, want refused as expired", err)
	}
}

func slicesEq(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestSitePermissions: a site's credentials reach its own subjects only;
// every other attempt is a real NATS permission violation.
func TestSitePermissions(t *testing.T) {
	h := hubtest.Start(t)
	s1 := h.Enroll(t, "s1")
	h.Enroll(t, "s2")
	perm := make(chan error, 16)
	nc := s1.Connect(t, h.URL, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case perm <- err:
		default:
		}
	}))
	expectViolation := func(t *testing.T, what string) {
		t.Helper()
		select {
		case err := <-perm:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("%s: error %v, want a permissions violation", what, err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: no permissions violation within 2 min", what)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Allowed: its own desired state (none yet), the trust statements.
	m, err := nc.RequestWithContext(ctx, hub.SubjectAskDesired+"s1", nil)
	if err != nil || m.Header.Get(hub.HeaderStatus) != hub.StatusNone {
		t.Fatalf("own desired state: %v %v", m, err)
	}
	if _, err := nc.RequestWithContext(ctx, hub.SubjectAskTrust, nil); err != nil {
		t.Fatalf("trust: %v", err)
	}
	if _, err := nc.SubscribeSync(hub.SubjectDesiredPrefix + "s1"); err != nil {
		t.Fatal(err)
	}
	// A report published as a request gets JetStream's ack on the site's
	// own inbox: no JetStream API rights needed.
	ack, err := nc.RequestWithContext(ctx, hub.SubjectReportPrefix+"s1", []byte(`{"site":"s1"}`))
	if err != nil || !strings.Contains(string(ack.Data), `"stream":"`+hub.StreamReports+`"`) {
		t.Fatalf("acked report: %v %v", ack, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-perm:
		t.Fatalf("allowed actions raised %v", err)
	default:
	}

	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"subscribe to another site's desired state", func() error {
			_, err := nc.SubscribeSync(hub.SubjectDesiredPrefix + "s2")
			return err
		}},
		{"subscribe to every site's desired state", func() error { _, err := nc.SubscribeSync("weir.desired.*"); return err }},
		{"subscribe to another site's inbox", func() error { _, err := nc.SubscribeSync(hub.InboxPrefix("s2") + ".>"); return err }},
		{"subscribe to reports", func() error { _, err := nc.SubscribeSync("weir.report.>"); return err }},
		{"publish to its desired-state subject", func() error { return nc.Publish(hub.SubjectDesiredPrefix+"s1", []byte("x")) }},
		{"publish another site's report", func() error { return nc.Publish(hub.SubjectReportPrefix+"s2", []byte("{}")) }},
		{"ask another site's desired state", func() error { return nc.PublishRequest(hub.SubjectAskDesired+"s2", "_INBOX_s1.x", nil) }},
		{"enrol", func() error { return nc.Publish(hub.SubjectEnroll, []byte("{}")) }},
		{"use the JetStream API", func() error { return nc.Publish("$JS.API.STREAM.LIST", nil) }},
		{"read the desired bucket directly", func() error { return nc.Publish("$JS.API.DIRECT.GET.KV_weir_desired", nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			expectViolation(t, c.name)
		})
	}
}

// TestRevocation: re-enrolling a site, or revoking it (as the CLI does,
// from another process), closes the connections of its earlier
// credentials and refuses them from then on; the new ones work.
func TestRevocation(t *testing.T) {
	h := hubtest.Start(t)
	ctx := ctxT(t)
	for _, c := range []struct {
		name   string
		revoke func(t *testing.T) hubtest.Site // returns the credentials that should still work, if any
	}{
		{"re-enrolment", func(t *testing.T) hubtest.Site { return h.Enroll(t, "s1") }},
		{"revoke from the CLI", func(t *testing.T) hubtest.Site {
			d, err := hub.Dial(ctx, hub.Config{DataDir: h.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.RevokeSite(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			return hubtest.Site{}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := h.Enroll(t, "s1")
			closed := make(chan struct{})
			nc := old.Connect(t, h.URL, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			fresh := c.revoke(t)
			select {
			case <-closed:
			case <-time.After(2 * time.Minute):
				t.Fatal("the revoked credentials' connection stayed open for 2 min")
			}
			if _, err := nats.Connect(h.URL, nats.UserCredentials(old.CredsFile)); err == nil {
				t.Fatal("revoked credentials connected again")
			}
			if fresh.CredsFile != "" {
				if err := fresh.Connect(t, h.URL).Flush(); err != nil {
					t.Fatalf("new credentials: %v", err)
				}
			}
		})
	}
	// Revocations survive a restart of the hub (the account is issued
	// again with them).
	revoked := h.Enroll(t, "s2")
	h.Enroll(t, "s2")
	h.Close()
	h = hubtest.StartIn(t, h.DataDir)
	if _, err := nats.Connect(h.URL, nats.UserCredentials(revoked.CredsFile)); err == nil {
		t.Fatal("revoked credentials connected after a hub restart")
	}
}
