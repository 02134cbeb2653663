package mqtt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/internal/sparkplugb/tahutest"
	"github.com/weir-edge/weir/model"
)

// tahuEncode has Eclipse Tahu's JavaScript library encode payloads
// described in its own JSON form (sinks/sparkplug/testdata/npm/encode.js).
func tahuEncode(t *testing.T, payloads ...string) [][]byte {
	t.Helper()
	lines := make([]string, len(payloads))
	for i, p := range payloads {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(p)); err != nil {
			t.Fatalf("payload description: %v\n%s", err, p)
		}
		lines[i] = compact.String()
	}
	out := tahutest.Run(t, "encode.js", lines)
	res := make([][]byte, len(out))
	for i, l := range out {
		var err error
		if res[i], err = base64.StdEncoding.DecodeString(l); err != nil {
			t.Fatalf("encode.js payload %d: %s", i, l)
		}
	}
	return res
}

// TestSparkplugTahuTemplates feeds the host what Tahu's reference library
// encodes for an Ignition-like edge node: UDT definitions in NBIRTH, a UDT
// instance (with a nested UDT and parameters) and a DataSet in DBIRTH, and
// DDATA with only the changed member and a new table.
func TestSparkplugTahuTemplates(t *testing.T) {
	payloads := tahuEncode(t,
		`{"timestamp": 1732568400000, "seq": 0, "metrics": [
			{"name": "bdSeq", "type": "Int64", "value": 0},
			{"name": "Node Control/Rebirth", "type": "Boolean", "value": false},
			{"name": "_types_/Alarm", "type": "Template", "value": {"version": "1.0", "isDefinition": true, "metrics": [
				{"name": "Active", "type": "Boolean", "value": false},
				{"name": "Text", "type": "String", "value": ""}]}},
			{"name": "_types_/Motor", "type": "Template", "value": {"version": "1.0", "isDefinition": true, "metrics": [
				{"name": "Speed", "type": "Float", "value": 0},
				{"name": "Running", "type": "Boolean", "value": false},
				{"name": "Code", "type": "Int16", "value": 0},
				{"name": "Counter", "type": "UInt32", "value": 0},
				{"name": "Alarm", "type": "Template", "value": {"templateRef": "_types_/Alarm", "isDefinition": false, "metrics": []}}],
				"parameters": [{"name": "Unit", "type": "String", "value": ""}]}}]}`,
		`{"timestamp": 1732568400000, "seq": 1, "metrics": [
			{"name": "Motor1", "alias": 10, "type": "Template", "value": {"templateRef": "_types_/Motor", "isDefinition": false, "metrics": [
				{"name": "Speed", "type": "Float", "value": 1500.5},
				{"name": "Running", "type": "Boolean", "value": true},
				{"name": "Code", "type": "Int16", "value": -3},
				{"name": "Counter", "type": "UInt32", "value": 4000000000},
				{"name": "Alarm", "type": "Template", "value": {"templateRef": "_types_/Alarm", "isDefinition": false, "metrics": [
					{"name": "Active", "type": "Boolean", "value": false},
					{"name": "Text", "type": "String", "value": "ok"}]}}],
				"parameters": [{"name": "Unit", "type": "String", "value": "rpm"}]}},
			{"name": "Recipe", "alias": 11, "type": "DataSet", "value": {"numOfColumns": 3, "columns": ["Step", "Temp", "Name"],
				"types": ["Int32", "Double", "String"], "rows": [[1, 80.5, "heat"], [2, 20, "cool"]]}},
			{"name": "Plain", "alias": 12, "type": "Int32", "value": 42}]}`,
		`{"timestamp": 1732568401000, "seq": 2, "metrics": [
			{"alias": 10, "type": "Template", "value": {"metrics": [
				{"name": "Alarm", "type": "Template", "value": {"metrics": [{"name": "Active", "type": "Boolean", "value": true}]}}]}},
			{"alias": 11, "type": "DataSet", "value": {"numOfColumns": 3, "columns": ["Step", "Temp", "Name"],
				"types": ["Int32", "Double", "String"], "rows": [[3, -1.5, "hold"]]}}]}`,
	)
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, spConfig(b, "h-tahu", false), out, withClock)
	b.WaitSubscribed(t, waitTimeout, 1)
	e := newEdge(t, b, "G1", "Ignition")
	b.Publish(t, e.topic(sparkplugb.NBIRTH, ""), payloads[0], 0, false)
	b.Publish(t, e.topic(sparkplugb.DBIRTH, "PLC"), payloads[1], 0, false)
	b.Publish(t, e.topic(sparkplugb.DDATA, "PLC"), payloads[2], 0, false)

	strs := func(xs ...string) model.Value {
		el := make([]model.Value, len(xs))
		for i, x := range xs {
			el[i] = model.String(x)
		}
		return model.Array(el)
	}
	floats := func(xs ...float64) model.Value {
		el := make([]model.Value, len(xs))
		for i, x := range xs {
			el[i] = model.Float(x)
		}
		return model.Array(el)
	}
	const t0, t1 = int64(1732568400000) * 1e6, int64(1732568401000) * 1e6
	want := []struct {
		path string
		v    model.Value
		ts   int64
	}{
		{"Motor1/Speed", model.Float(1500.5), t0},
		{"Motor1/Running", model.Bool(true), t0},
		{"Motor1/Code", model.Int(-3), t0},
		{"Motor1/Counter", model.Uint(4000000000), t0},
		{"Motor1/Alarm/Active", model.Bool(false), t0},
		{"Motor1/Alarm/Text", model.String("ok"), t0},
		{"Recipe/Step", ints(1, 2), t0},
		{"Recipe/Temp", floats(80.5, 20), t0},
		{"Recipe/Name", strs("heat", "cool"), t0},
		{"Plain", model.Int(42), t0},
		{"Motor1/Alarm/Active", model.Bool(true), t1},
		{"Recipe/Step", ints(3), t1},
		{"Recipe/Temp", floats(-1.5), t1},
		{"Recipe/Name", strs("hold"), t1},
	}
	got := out.waitN(t, len(want))
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d:\n%s", len(got), len(want), dumpSamples(got))
	}
	for i, w := range want {
		g := got[i]
		path := "spBv1.0/G1/Ignition/PLC/" + w.path
		if g.Path != path || !g.Value.Equal(w.v) || !g.Quality.IsGood() || g.SourceTime != w.ts {
			t.Errorf("sample %d: got %s = %#v (%s) ts=%d, want %s = %#v ts=%d", i, g.Path, g.Value, g.Quality, g.SourceTime, path, w.v, w.ts)
		}
	}
	st := s.Status()
	if st.Counters["decode_errors"] != 0 || st.Counters["unknown_aliases"] != 0 || st.Counters["rebirth_requests"] != 0 {
		t.Fatalf("counters %+v", st.Counters)
	}
	// bdSeq and Rebirth, Motor1 + Alarm + their 6 members, the DataSet + 3
	// columns, and one more scalar; definitions not counted.
	if g := st.Children[0].Gauges["metrics"]; g != 2+2+6+1+3+1 {
		t.Fatalf("metrics gauge %v, want 15", g)
	}
}
