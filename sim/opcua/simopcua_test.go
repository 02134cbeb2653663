package simopcua

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLog() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func serve(t testing.TB, plant *sim.Plant, opts Options) *Server {
	t.Helper()
	if plant == nil {
		plant = sim.NewPlant(sim.PlantOptions{Seed: 1})
	}
	s, err := Serve(context.Background(), "127.0.0.1:0", plant, opts, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial connects a gopcua client with security None and the given auth.
func dial(t testing.TB, s *Server, opts ...opcua.Option) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
	if err != nil {
		t.Fatal(err)
	}
	tok := ua.UserTokenTypeAnonymous
	if len(opts) > 0 {
		tok = ua.UserTokenTypeUserName
	}
	opts = append(opts, opcua.SecurityFromEndpoint(ep, tok), opcua.AutoReconnect(false), opcua.RequestTimeout(5*time.Second))
	c, err := opcua.NewClient(s.Endpoint(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func read(t testing.TB, c *opcua.Client, nodes ...string) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, n := range nodes {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.MustParseNodeID(n), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Results
}

func TestSampleOptions(t *testing.T) {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(SampleConfig)))
	dec.KnownFields(true)
	var o Options
	if err := dec.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(o.Users) == 0 || len(o.Security) == 0 {
		t.Errorf("sample should show users and security: %+v", o)
	}
}

func TestBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"unknown policy":     {Security: []string{"Basic128"}},
		"negative refresh":   {Refresh: -1},
		"cert without key":   {CertFile: "x.pem"},
		"deny without users": {DenyAnonymous: true},
		"too many nodes":     {BenchNodes: 2_000_000},
	} {
		t.Run(name, func(t *testing.T) {
			if err := o.Validate(); err == nil {
				t.Error("Validate accepted it")
			}
			if _, err := Serve(context.Background(), "127.0.0.1:0", sim.NewPlant(sim.PlantOptions{}), o, nil); err == nil {
				t.Error("Serve accepted it")
			}
		})
	}
}

func TestReadPlantAndTypes(t *testing.T) {
	plant := sim.NewPlant(sim.PlantOptions{Seed: 3})
	s := serve(t, plant, Options{})
	c := dial(t, s)
	vals := plant.Values()
	res := read(t, c, "ns=1;s=filler.product_temp", "ns=1;s=filler.bottle_count", "ns=1;s=filler.speed_setpoint",
		"ns=1;s=filler.run_cmd", "ns=1;s=filler.product_name", "ns=1;s=types.int32_array", "ns=1;s=types.bad", "ns=1;s=nope")
	if got, want := res[0].Value.Value(), float32(vals["product_temp"].(float64)); got != want {
		t.Errorf("product_temp = %v (%T), want %v", got, got, want)
	}
	if got, want := res[1].Value.Value(), uint32(vals["bottle_count"].(uint64)); got != want {
		t.Errorf("bottle_count = %v (%T), want %v", got, got, want)
	}
	if got := res[2].Value.Value(); got != uint16(400) {
		t.Errorf("speed_setpoint = %v (%T), want uint16 400", got, got)
	}
	if got := res[3].Value.Value(); got != true {
		t.Errorf("run_cmd = %v", got)
	}
	if got := res[4].Value.Value(); got != vals["product_name"] {
		t.Errorf("product_name = %v", got)
	}
	if got, ok := res[5].Value.Value().([]int32); !ok || len(got) != 3 || got[1] != -2 {
		t.Errorf("int32_array = %#v", res[5].Value.Value())
	}
	if res[6].Status != ua.StatusBadSensorFailure {
		t.Errorf("bad status = %v", res[6].Status)
	}
	if res[7].Status != ua.StatusBadNodeIDUnknown {
		t.Errorf("unknown node status = %v", res[7].Status)
	}
	if res[0].SourceTimestamp.IsZero() {
		t.Error("no source timestamp")
	}
}

func TestWriteSetpointsReachThePlant(t *testing.T) {
	plant := sim.NewPlant(sim.PlantOptions{Seed: 3})
	s := serve(t, plant, Options{})
	c := dial(t, s)
	write := func(node string, v any) ua.StatusCode {
		res, err := c.Write(context.Background(), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID: ua.MustParseNodeID(node), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Results[0]
	}
	for _, tc := range []struct {
		name, node string
		v          any
		want       ua.StatusCode
	}{
		{"speed", "ns=1;s=filler.speed_setpoint", uint16(300), ua.StatusOK},
		{"temp", "ns=1;s=filler.temp_setpoint", float32(70), ua.StatusOK},
		{"run", "ns=1;s=filler.run_cmd", false, ua.StatusOK},
		{"batch", "ns=1;s=filler.batch_id", "LOT-1", ua.StatusOK},
		{"out of range", "ns=1;s=filler.speed_setpoint", uint16(9000), ua.StatusBadOutOfRange},
		{"wrong type", "ns=1;s=filler.speed_setpoint", 300.0, ua.StatusBadTypeMismatch},
		{"read-only", "ns=1;s=filler.product_temp", float32(1), ua.StatusBadNotWritable},
		{"unknown", "ns=1;s=filler.nope", float32(1), ua.StatusBadNodeIDUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := write(tc.node, tc.v); got != tc.want {
				t.Errorf("write = %v, want %v", got, tc.want)
			}
		})
	}
	v := plant.Values()
	if v["speed_setpoint"] != 300.0 || v["temp_setpoint"] != 70.0 || v["run_cmd"] != false || v["batch_id"] != "LOT-1" {
		t.Errorf("plant after writes: speed %v temp %v run %v batch %v", v["speed_setpoint"], v["temp_setpoint"], v["run_cmd"], v["batch_id"])
	}
	if got := read(t, c, "ns=1;s=filler.speed_setpoint")[0].Value.Value(); got != uint16(300) {
		t.Errorf("read back speed_setpoint = %v", got)
	}
}

func TestSubscriptionSeesPlantSteps(t *testing.T) {
	s := serve(t, nil, Options{Refresh: 20 * time.Millisecond, Step: time.Second})
	c := dial(t, s)
	ch := make(chan *opcua.PublishNotificationData, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID("ns=1;s=filler.uptime"), ua.AttributeIDValue, 1))
	if err != nil || res.Results[0].StatusCode != ua.StatusOK {
		t.Fatalf("monitor: %v %v", err, res)
	}
	var last int64 = -1
	for changes := 0; changes < 3; {
		select {
		case n := <-ch:
			if n.Error != nil {
				t.Fatal(n.Error)
			}
			for _, m := range n.Value.(*ua.DataChangeNotification).MonitoredItems {
				v := m.Value.Value.Value().(int64)
				if v <= last {
					t.Fatalf("uptime went from %d to %d", last, v)
				}
				last = v
				changes++
			}
		case <-ctx.Done():
			t.Fatal("no notifications")
		}
	}
}

func TestUsernameLogin(t *testing.T) {
	s := serve(t, nil, Options{Users: map[string]string{"op": "s3cret"}, DenyAnonymous: true})
	c := dial(t, s, opcua.AuthUsername("op", "s3cret"))
	if res := read(t, c, "ns=1;s=types.double"); res[0].Value.Value() != 2.25 {
		t.Errorf("read as op: %v", res[0].Value.Value())
	}
	for name, opt := range map[string]opcua.Option{
		"wrong password": opcua.AuthUsername("op", "nope"),
		"unknown user":   opcua.AuthUsername("eve", "s3cret"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eps, err := opcua.GetEndpoints(ctx, s.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			ep, _ := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
			c, err := opcua.NewClient(s.Endpoint(), opt, opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName), opcua.AutoReconnect(false))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Connect(ctx); err == nil {
				c.Close(ctx)
				t.Fatal("connected with bad credentials")
			}
		})
	}
	if s.Stats().AuthFailures < 2 {
		t.Errorf("auth failures = %d", s.Stats().AuthFailures)
	}
}

func TestBrowse(t *testing.T) {
	s := serve(t, nil, Options{BenchNodes: 3})
	c := dial(t, s)
	ctx := context.Background()
	kids, err := c.Node(ua.NewNumericNodeID(0, id.ObjectsFolder)).ReferencedNodes(ctx, id.HierarchicalReferences, ua.BrowseDirectionForward, ua.NodeClassAll, true)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, k := range kids {
		found[k.ID.String()] = true
	}
	for _, want := range []string{"ns=1;s=filler", "ns=1;s=types", "ns=1;s=bench"} {
		if !found[want] {
			t.Errorf("Objects lacks %s; has %v", want, found)
		}
	}
	vars, err := c.Node(ua.MustParseNodeID("ns=1;s=bench")).ReferencedNodes(ctx, id.HierarchicalReferences, ua.BrowseDirectionForward, ua.NodeClassAll, true)
	if err != nil || len(vars) != 3 {
		t.Fatalf("bench children: %v, %v", vars, err)
	}
}
