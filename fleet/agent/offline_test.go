package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A site started with its hub out of reach runs its last known-good
// configuration from its store.
func TestOfflineStartRunsKnownGood(t *testing.T) {
	h := startHub(t)
	dir := t.TempDir()
	s := startSite(t, h, "s1", dir, nil)
	h.setDesired(h.issue("s1", 3, "v: 3\n"), true)
	h.waitReport("s1", "version 3 in sync", func(r Report) bool { return r.Applied.Version == 3 && r.State == StateInSync })
	s.stop()
	h.stop()

	// The hub is gone; the site restarts from its own file.
	s2 := startSite(t, h, "s1", dir, nil)
	deadline := time.Now().Add(hangBound)
	for string(s2.target.Running()) != "v: 3\n" {
		if time.Now().After(deadline) {
			t.Fatalf("offline start: running %q, want the known-good version 3", s2.target.Running())
		}
		time.Sleep(10 * time.Millisecond) // polling, not synchronisation
	}
	actors, _ := s2.target.history()
	if len(actors) != 1 || actors[0] != "fleet:known-good:v3" {
		t.Fatalf("applies = %v, want fleet:known-good:v3", actors)
	}
	if r := s2.agent.Snapshot(); r.State != StateInSync || r.Applied.Version != 3 || r.Effective.Version != 3 {
		t.Fatalf("offline snapshot: %+v", r)
	}
}

// The network cut (the server stops) while the hub moves on from version
// 1 to 5: on return the site asks, goes straight to 5 (2 to 4 never
// applied), and the reports it made while cut off arrive, newest first.
func TestReconnectGoesStraightToNewest(t *testing.T) {
	h := startHub(t)
	s := startSite(t, h, "s1", "", func(o *Options) {
		// The test needs quick retries, not the production backoff.
		o.NATS = append(o.NATS, nats.CustomReconnectDelay(func(int) time.Duration { return 50 * time.Millisecond }))
	})
	h.setDesired(h.issue("s1", 1, "v: 1\n"), true)
	h.waitReport("s1", "version 1 in sync", func(r Report) bool { return r.Applied.Version == 1 && r.State == StateInSync })
	h.stop()
	// While cut off the site keeps reporting (held); a break-glass change
	// makes one of them different.
	if err := s.target.Apply(context.Background(), []byte("v: 1\nlocal: yes\n"), "api:admin"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangBound)
	for s.agent.Held() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the site holds %d reports while cut off, want 2", s.agent.Held())
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
	for v := uint64(2); v <= 5; v++ {
		h.mu.Lock()
		h.desired["s1"] = h.issue("s1", v, "v: "+string(rune('0'+v))+"\n").Encode()
		h.mu.Unlock()
	}
	h.start()
	h.waitReport("s1", "version 5 in sync", func(r Report) bool { return r.Applied.Version == 5 && r.State == StateInSync })
	actors, _ := s.target.history()
	if got := strings.Join(actors, ","); got != "fleet:v1,api:admin,fleet:v5" {
		t.Fatalf("applies = %s, want fleet:v1,api:admin,fleet:v5 (nothing in between)", got)
	}
	// In the stream: the report made at the return (it counts the ones
	// held) comes first, then those held while cut off, in their order.
	// The held reports may still be on their way when version 5's
	// report arrives: read the stream again until they are all stored.
	var stored []Report
	first := -1
	for deadline := time.Now().Add(hangBound); ; {
		stored, first = h.storedReports("s1"), -1
		for i, r := range stored {
			if r.Offline > 0 {
				first = i
				break
			}
		}
		if first >= 0 && len(stored) >= first+1+stored[first].Offline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored reports: %d, the one after the return at %d; the held ones never all arrived", len(stored), first)
		}
		time.Sleep(10 * time.Millisecond) // polling the stream: nothing to wait on in-process
	}
	held := stored[first+1 : first+1+stored[first].Offline]
	for i, r := range held {
		if !r.Drift || r.Applied.Version != 1 || r.Seq >= stored[first].Seq || (i > 0 && r.Seq <= held[i-1].Seq) {
			t.Fatalf("held report %d: seq %d drift %v applied %d; want drift on version 1, in order, before seq %d", i, r.Seq, r.Drift, r.Applied.Version, stored[first].Seq)
		}
	}
}

// A site's credentials reach only its own subjects (the contract's
// permissions, enforced by the server): s1 cannot follow s2's desired
// state nor report as s2.
func TestCredentialsConfinedToSite(t *testing.T) {
	h := startHub(t)
	errs := make(chan error, 4)
	nc, err := nats.Connect(h.url(), nats.UserInfo("s1", "s1"), nats.CustomInboxPrefix("_INBOX_s1"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("weir.desired.s2"); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Fatalf("subscribe weir.desired.s2: %v, want a permissions violation", err)
		}
	case <-time.After(hangBound):
		t.Fatal("subscribing to another site's desired state was not refused")
	}
	if _, err := nc.Request("weir.report.s2", []byte("{}"), time.Second); err == nil {
		t.Fatal("publishing another site's report was acknowledged")
	}
	if _, err := nc.Request("weir.hub.desired.s2", nil, time.Second); err == nil {
		t.Fatal("asking for another site's bundle was answered")
	}
}

// While cut off the site holds only the newest Backlog reports: memory
// stays bounded however long the outage.
func TestHeldReportsAreBounded(t *testing.T) {
	h := startHub(t)
	s := startSite(t, h, "s1", "", func(o *Options) { o.Backlog = 2 })
	h.waitReport("s1", "a first report", func(Report) bool { return true })
	h.stop()
	deadline := time.Now().Add(hangBound)
	for s.agent.Held() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the site holds %d reports while cut off, want 2", s.agent.Held())
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
	made := s.agent.Snapshot().Seq
	for s.agent.Snapshot().Seq < made+3 {
		if time.Now().After(deadline) {
			t.Fatal("the site stopped making reports while cut off")
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
	if got := s.agent.Held(); got != 2 {
		t.Fatalf("after 3 more reports the site holds %d, want the bound 2", got)
	}
}

// A hub that does not answer (it cannot read NATS) is asked again with
// backoff, never taken as "no configuration".
func TestUnansweredAskIsRetried(t *testing.T) {
	h := startHub(t)
	h.mu.Lock()
	h.silent = 2
	h.mu.Unlock()
	h.setDesired(h.issue("s1", 4, "v: 4\n"), false) // only the answer has it
	s := startSite(t, h, "s1", "", func(o *Options) { o.RequestTimeout = 200 * time.Millisecond })
	h.waitReport("s1", "version 4 in sync", func(r Report) bool { return r.Applied.Version == 4 && r.State == StateInSync })
	h.mu.Lock()
	left := h.silent
	h.mu.Unlock()
	if left != 0 || s.store.Current().Version != 4 {
		t.Fatalf("unanswered requests left %d, known-good %d; want 0 and version 4", left, s.store.Current().Version)
	}
}
