package opcua

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

func TestSubscribeTypesAgainstSim(t *testing.T) {
	srv := serveSim(t, simopcua.Options{Refresh: 20 * time.Millisecond})
	want := map[string]model.Value{
		"boolean":       model.Bool(true),
		"sbyte":         model.Int(-8),
		"byte":          model.Uint(200),
		"int16":         model.Int(-1600),
		"uint16":        model.Uint(1600),
		"int32":         model.Int(-320000),
		"uint32":        model.Uint(3200000000),
		"int64":         model.Int(-6400000000),
		"uint64":        model.Uint(18000000000000000000),
		"float":         model.Float(1.5),
		"double":        model.Float(2.25),
		"string":        model.String("Grüße"),
		"datetime":      model.String("2024-01-02T03:04:05.6Z"),
		"bytestring":    model.String("3q2+7w=="),
		"guid":          model.String("72962B91-FA75-4AE6-8D28-B404DC7DAF63"),
		"nodeid":        model.String("ns=1;s=filler"),
		"qualifiedname": model.String("1:filler"),
		"localizedtext": model.String("Abfüllung"),
		"statuscode":    model.String("BadSensorFailure"),
		"double_array":  model.Array([]model.Value{model.Float(1.5), model.Float(-2.5), model.Float(3)}),
		"int32_array":   model.Array([]model.Value{model.Int(1), model.Int(-2), model.Int(3)}),
		"string_array":  model.Array([]model.Value{model.String("a"), model.String("b")}),
		"bool_array":    model.Array([]model.Value{model.Bool(true), model.Bool(false)}),
	}
	cfg := insecure(srv.Endpoint())
	sub := SubscriptionConfig{PublishingInterval: 50 * time.Millisecond}
	for name := range want {
		sub.Items = append(sub.Items, ItemConfig{Name: "types/" + name, NodeID: "ns=1;s=types." + name})
	}
	sub.Items = append(sub.Items,
		ItemConfig{Name: "filler/product_temp", NodeID: "ns=1;s=filler.product_temp"},
		ItemConfig{Name: "counter", NodeID: "nsu=" + simopcua.NamespaceURI + ";s=types.counter"}) // by namespace URI
	cfg.Subscriptions = []SubscriptionConfig{sub}
	cfg.BatchSize = 7 // several CreateMonitoredItems calls
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "every item and three counter values", func() bool {
		return rec.paths() == len(want)+2 && rec.count("plant/counter") >= 3
	})
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			s := rec.last(t, "plant/types/"+name)
			if !s.Value.Equal(w) || !s.Quality.IsGood() {
				t.Errorf("%s = %#v (%v), want %#v", name, s.Value, s.Quality, w)
			}
			if s.SourceTime == 0 || s.EdgeTime < s.SourceTime {
				t.Errorf("times: source %d edge %d", s.SourceTime, s.EdgeTime)
			}
		})
	}
	if k := rec.last(t, "plant/filler/product_temp").Value.Kind(); k != model.KindFloat {
		t.Errorf("product_temp kind %v", k)
	}
	c := rec.samples("plant/counter")
	for i := 1; i < len(c); i++ {
		if c[i].Value.AsUint() <= c[i-1].Value.AsUint() || c[i].SourceTime <= c[i-1].SourceTime {
			t.Fatalf("counter not increasing: %v then %v", c[i-1], c[i])
		}
	}
	st := src.Status()
	if st.State != pipeline.StateRunning || st.Counters["items_created"] != uint64(len(want)+2) {
		t.Errorf("status %+v", st)
	}
}

func TestPolledReadsAgainstSim(t *testing.T) {
	srv := serveSim(t, simopcua.Options{Refresh: 10 * time.Millisecond})
	cfg := insecure(srv.Endpoint())
	cfg.Poll = []PollConfig{{Interval: 30 * time.Millisecond, Items: []PollItem{
		{Name: "counter", NodeID: "ns=1;s=types.counter"},
		{Name: "double", NodeID: "ns=1;s=types.double"},
		{Name: "bad", NodeID: "ns=1;s=types.bad"},
	}}}
	cfg.BatchSize = 2
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "four polls", func() bool { return rec.count("plant/double") >= 4 })
	d := rec.samples("plant/double")
	if !d[0].Value.Equal(model.Float(2.25)) || d[0].SourceTime != d[len(d)-1].SourceTime {
		t.Errorf("double samples %v: a polled unchanged value keeps its source time", d)
	}
	if b := rec.last(t, "plant/bad"); b.Quality.Code != model.Bad || b.Quality.Reason != "BadSensorFailure" || b.Value.IsValid() {
		t.Errorf("bad = %v %v", b.Value, b.Quality)
	}
	if src.Status().Counters["reads"] < 8 {
		t.Errorf("reads = %d, want ≥ 8 (two per poll)", src.Status().Counters["reads"])
	}
}

func TestDeadbandAgainstSim(t *testing.T) {
	// types.ramp grows by 1 every refresh; the simulator ignores filters,
	// so this exercises the client-side deadband.
	srv := serveSim(t, simopcua.Options{Refresh: 10 * time.Millisecond})
	cfg := insecure(srv.Endpoint())
	cfg.Subscriptions = []SubscriptionConfig{{PublishingInterval: 10 * time.Millisecond, Items: []ItemConfig{
		{Name: "ramp_db", NodeID: "ns=1;s=types.ramp", Deadband: &Deadband{Type: "absolute", Value: 4.5}},
		{Name: "ramp", NodeID: "ns=1;s=types.ramp"},
	}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "five values past the deadband", func() bool { return rec.count("plant/ramp_db") >= 5 })
	db := rec.samples("plant/ramp_db")
	for i := 1; i < len(db); i++ {
		if d := db[i].Value.AsFloat() - db[i-1].Value.AsFloat(); d <= 4.5 {
			t.Fatalf("deadband passed a change of %v: %v → %v", d, db[i-1].Value, db[i].Value)
		}
	}
	if all := rec.count("plant/ramp"); all <= len(db) {
		t.Errorf("unfiltered item has %d samples, filtered %d", all, len(db))
	}
	if src.Status().Counters["deadband_dropped"] == 0 {
		t.Error("deadband_dropped counter is 0")
	}
}

func TestStatusToQualityAndFailedNodes(t *testing.T) {
	srv := serveSim(t, simopcua.Options{})
	cfg := insecure(srv.Endpoint())
	cfg.Subscriptions = []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond, Items: []ItemConfig{
		{Name: "bad", NodeID: "ns=1;s=types.bad"},
		{Name: "uncertain", NodeID: "ns=1;s=types.uncertain"},
		{Name: "good", NodeID: "ns=1;s=types.double"},
		{Name: "missing_ns", NodeID: "nsu=urn:nowhere;s=x"},
	}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "all four items", func() bool { return rec.paths() == 4 })
	for _, tc := range []struct {
		path   string
		code   model.QualityCode
		reason string
		valid  bool
	}{
		{"plant/bad", model.Bad, "BadSensorFailure", false},
		{"plant/uncertain", model.Uncertain, "UncertainLastUsableValue", true},
		{"plant/good", model.Good, "", true},
		{"plant/missing_ns", model.Bad, reasonNamespaceUnknown, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s := rec.last(t, tc.path)
			if s.Quality.Code != tc.code || s.Quality.Reason != tc.reason || s.Value.IsValid() != tc.valid {
				t.Errorf("got %v %v", s.Value, s.Quality)
			}
		})
	}
	st := src.Status()
	if st.Gauges["items_failed"] != 1 || len(st.Children[0].Children) != 1 ||
		!strings.Contains(st.Children[0].Children[0].LastError, "urn:nowhere") {
		t.Errorf("failed item not in status: %+v", st)
	}
}

// TestSecureUsernameAndTrust connects with Basic256Sha256 SignAndEncrypt
// and a user name: the first attempt rejects the unknown server
// certificate into rejected/; once moved to trusted/ the session runs.
func TestSecureUsernameAndTrust(t *testing.T) {
	srv := serveSim(t, simopcua.Options{Security: []string{"Basic256Sha256"}, Users: map[string]string{"op": "pw"}, DenyAnonymous: true})
	dir := t.TempDir()
	t.Setenv("WEIR_TEST_OPCUA_PW", "pw")
	cfg := Config{Endpoint: srv.Endpoint(), SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt", PKIDir: dir, Namespace: "plant",
		Auth:             Auth{Type: "username", Username: "op", Password: conf.Secret{Env: "WEIR_TEST_OPCUA_PW"}},
		WatchdogInterval: 2 * time.Second, ReconnectMax: 200 * time.Millisecond,
		Subscriptions: []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond, Items: []ItemConfig{{Name: "d", NodeID: "ns=1;s=types.double"}}}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)

	// The certificate lands in rejected/ during the handshake, a moment
	// before the failed connect is recorded in the status: wait for both.
	var rejected []os.DirEntry
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		rejected, _ = os.ReadDir(filepath.Join(dir, "rejected"))
		if len(rejected) > 0 && strings.Contains(src.Status().LastError, "not trusted") {
			break
		}
		<-time.After(20 * time.Millisecond) // polling the file system and the status: nothing to wait on
	}
	if len(rejected) != 1 {
		t.Fatalf("rejected/ has %v", rejected)
	}
	if st := src.Status(); !strings.Contains(st.LastError, "not trusted") {
		t.Errorf("last error %q", st.LastError)
	}
	if rec.paths() != 0 {
		t.Fatal("data arrived from an untrusted server")
	}
	if _, err := os.Stat(filepath.Join(dir, "own", "cert.pem")); err != nil {
		t.Errorf("own certificate not created: %v", err)
	}
	name := rejected[0].Name()
	if err := os.Rename(filepath.Join(dir, "rejected", name), filepath.Join(dir, "trusted", name)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 20*time.Second, "data after trusting", func() bool { return rec.count("plant/d") > 0 })
	if s := rec.last(t, "plant/d"); !s.Value.Equal(model.Float(2.25)) {
		t.Errorf("d = %v", s.Value)
	}
}

// TestReconnectAfterSimRestart stops the simulator and starts a new one on
// the same port: every item resumes, once.
func TestReconnectAfterSimRestart(t *testing.T) {
	plant := sim.NewPlant(sim.PlantOptions{Seed: 7})
	srv1, err := simopcua.Serve(context.Background(), "127.0.0.1:0", plant, simopcua.Options{Refresh: 20 * time.Millisecond}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer srv1.Close()
	cfg := insecure(srv1.Endpoint())
	cfg.ReconnectMax = 300 * time.Millisecond
	cfg.WatchdogInterval, cfg.RequestTimeout = time.Second, time.Second
	cfg.Subscriptions = []SubscriptionConfig{{PublishingInterval: 20 * time.Millisecond, Items: []ItemConfig{
		{Name: "counter", NodeID: "ns=1;s=types.counter"},
		{Name: "double", NodeID: "ns=1;s=types.double"},
		{Name: "run", NodeID: "ns=1;s=filler.run_cmd"},
	}}}
	src := mustNew(t, cfg)
	rec := newRecorder()
	startSource(t, src, rec)
	rec.waitFor(t, 15*time.Second, "counter running", func() bool { return rec.count("plant/counter") >= 3 })
	before := map[string]int{}
	for _, p := range []string{"plant/counter", "plant/double", "plant/run"} {
		before[p] = rec.count(p)
	}
	// gopcua's server never closes a connected client's socket, so its
	// Close waits (10 s) for the client to go; the port is free at once.
	// The source notices the silent server by its watchdog.
	closed := make(chan struct{})
	go func() { srv1.Close(); close(closed) }()
	defer func() { <-closed }()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv1.Endpoint(), "opc.tcp://"))
	var srv2 *simopcua.Server
	for deadline := time.Now().Add(10 * time.Second); ; { // until srv1's Close has released the port
		if srv2, err = simopcua.Serve(context.Background(), "127.0.0.1:"+port, plant, simopcua.Options{Refresh: 20 * time.Millisecond}, testLog()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer srv2.Close()
	rec.waitFor(t, 20*time.Second, "every item after the restart", func() bool {
		for p, n := range before {
			if rec.count(p) <= n {
				return false
			}
		}
		return true
	})
	// Static values come again with the new server's source timestamp:
	// exactly one new sample each, not one per resubscription.
	rec.waitFor(t, 10*time.Second, "counter past the restart", func() bool { return rec.count("plant/counter") >= before["plant/counter"]+3 })
	for _, p := range []string{"plant/double", "plant/run"} {
		s := rec.samples(p)
		if len(s) != before[p]+1 || s[len(s)-1].SourceTime <= s[len(s)-2].SourceTime {
			t.Errorf("%s: %d samples (before restart %d): %v", p, len(s), before[p], s)
		}
	}
	if src.Status().Counters["sessions"] < 2 {
		t.Errorf("sessions = %d", src.Status().Counters["sessions"])
	}
}

func TestInConfigOrder(t *testing.T) {
	mk := func(handles ...uint32) []*ua.MonitoredItemNotification {
		var out []*ua.MonitoredItemNotification
		for i, h := range handles {
			out = append(out, &ua.MonitoredItemNotification{ClientHandle: h, Value: &ua.DataValue{Value: ua.MustVariant(int32(i))}})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []*ua.MonitoredItemNotification
		want []string // handle:value
	}{
		{"already in order", mk(0, 1, 2), []string{"0:0", "1:1", "2:2"}},
		{"server order", mk(7, 2, 5, 0), []string{"0:3", "2:1", "5:2", "7:0"}},
		{"an item twice keeps its values in order", mk(3, 1, 3, 0, 1), []string{"0:3", "1:1", "1:4", "3:0", "3:2"}},
		{"nil entries last", append(mk(2, 0), nil), []string{"0:1", "2:0", "nil"}},
		{"unknown handles last, in arrival order", mk(9000, 3, 8000, 1), []string{"1:3", "3:1", "9000:0", "8000:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, handles := range []int{8, 1000} { // counting sort, comparison sort
				in := slices.Clone(tc.in)
				inConfigOrder(in, handles, &orderScratch{})
				if got := render(in); !slices.Equal(got, tc.want) {
					t.Fatalf("%d handles: got %v, want %v", handles, got, tc.want)
				}
			}
		})
	}
}

func render(items []*ua.MonitoredItemNotification) []string {
	var got []string
	for _, m := range items {
		if m == nil {
			got = append(got, "nil")
			continue
		}
		got = append(got, fmt.Sprintf("%d:%v", m.ClientHandle, m.Value.Value.Value()))
	}
	return got
}
