package mqtt

import (
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// TestSparkplugNamesEscaped: metric names no topic can carry (not UTF-8,
// MQTT wildcards, control characters) become tags by the one escaping
// rule of model.EscapePath, at birth and for DATA by alias, so that no
// sink is handed a name its destination refuses.
func TestSparkplugNamesEscaped(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-escape", false), out, withClock)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "E1")
	names := []struct{ raw, want string }{
		{"bad\xffname", "spBv1.0/G1/E1/bad%FFname"},
		{"a+b/c#d", "spBv1.0/G1/E1/a%2Bb/c%23d"},
		{"tab\there", "spBv1.0/G1/E1/tab%09here"},
		{"ok/temp °C", "spBv1.0/G1/E1/ok/temp °C"},
	}
	var birth, data []*sparkplugb.Metric
	for i, n := range names {
		birth = append(birth, e.metric(n.raw, n.raw, sparkplugb.DataType_Int32, model.Int(int64(i)), true))
		data = append(data, e.metric(n.raw, n.raw, sparkplugb.DataType_Int32, model.Int(int64(10+i)), false))
	}
	e.nbirth(birth...)
	e.ts += 1000
	e.send(sparkplugb.NDATA, "", data, true)
	got := out.waitN(t, 2*len(names))
	for i, n := range names {
		for _, g := range []model.Sample{got[i], got[len(names)+i]} {
			if g.Path != n.want {
				t.Errorf("metric %q: path %q, want %q", n.raw, g.Path, n.want)
			}
			if err := model.ValidatePath(g.Path); err != nil {
				t.Errorf("metric %q: %v", n.raw, err)
			}
		}
	}
	if st := s.Status(); st.Counters["unknown_aliases"] != 0 || st.Counters["decode_errors"] != 0 {
		t.Fatalf("counters %+v", st.Counters)
	}
}
