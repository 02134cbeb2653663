package sparkplug

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/internal/sparkplugb/tahutest"
	"github.com/weir-edge/weir/model"
)

// jsMetric / jsPayload are decode.js's output: "decoded" is what Eclipse
// Tahu's sparkplug-payload makes of a payload, "raw" the protobufjs view.
type jsMetric struct {
	Name         *string         `json:"name"`
	Alias        string          `json:"alias"`
	Timestamp    string          `json:"timestamp"`
	Type         string          `json:"type"`
	Value        json.RawMessage `json:"value"`
	IsHistorical bool            `json:"isHistorical"`
}

type jsRawMetric struct {
	Alias       string   `json:"alias"`
	Datatype    *int     `json:"datatype"`
	Name        *string  `json:"name"`
	DoubleValue *float64 `json:"doubleValue"`
	LongValue   string   `json:"longValue"`
	IntValue    *uint32  `json:"intValue"`
	StringValue *string  `json:"stringValue"`
	BoolValue   *bool    `json:"booleanValue"`
	Value       string   `json:"value"` // name of the oneof field set
	Properties  *struct {
		Keys []string `json:"keys"`
	} `json:"properties"`
}

type jsPayload struct {
	Error   string `json:"error"`
	Decoded struct {
		Timestamp string     `json:"timestamp"`
		Seq       string     `json:"seq"`
		Metrics   []jsMetric `json:"metrics"`
	} `json:"decoded"`
	Raw struct {
		Metrics []jsRawMetric `json:"metrics"`
	} `json:"raw"`
}

// referenceDecode runs testdata/npm/decode.js over payloads.
func referenceDecode(t *testing.T, payloads [][]byte) []jsPayload {
	t.Helper()
	lines := make([]string, len(payloads))
	for i, p := range payloads {
		lines[i] = base64.StdEncoding.EncodeToString(p)
	}
	res := make([]jsPayload, len(payloads))
	for i, l := range tahutest.Run(t, "decode.js", lines) {
		if err := json.Unmarshal([]byte(l), &res[i]); err != nil {
			t.Fatalf("decode.js line %d: %v", i, err)
		}
		if res[i].Error != "" {
			t.Fatalf("reference decoder: %s", res[i].Error)
		}
	}
	return res
}

// TestReferenceDecoder has Eclipse Tahu's JavaScript library decode the
// NBIRTH, DBIRTH and DDATA Weir publishes and checks names, aliases,
// datatypes, values, seq and timestamps.
func TestReferenceDecoder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := testCfg(t, b, Version311)
	g := cfg.GroupID
	s := newSink(t, cfg)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	batch := []model.Sample{
		sample("cell/temp", model.Float(21.25), 1),
		sample("cell/count", model.Int(-42), 2),
		sample("cell/big", model.Uint(1<<63+5), 3),
		sample("cell/on", model.Bool(true), 4),
		sample("cell/name", model.String("ünïcode \"q\""), 5),
	}
	batch[4].Historical = true
	if err := s.Write(ctxT(t), batch); err != nil {
		t.Fatal(err)
	}
	msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "DDATA", hasN(1, sparkplugb.DDATA)(t, g)), g, "E1")
	var raws [][]byte
	for _, m := range b.Messages() {
		if tp, err := sparkplugb.ParseTopic(m.Topic); err == nil && tp.Group == g {
			raws = append(raws, m.Payload)
		}
	}
	if len(raws) != 3 || len(msgs) != 3 {
		t.Fatalf("%d messages, want NBIRTH, DBIRTH, DDATA", len(raws))
	}
	js := referenceDecode(t, raws)
	for i, p := range js {
		if p.Decoded.Seq != strconv.FormatUint(msgs[i].payload.GetSeq(), 10) || p.Decoded.Seq != strconv.Itoa(i) {
			t.Errorf("message %d: seq %q", i, p.Decoded.Seq)
		}
		if p.Decoded.Timestamp != strconv.FormatUint(msgs[i].payload.GetTimestamp(), 10) {
			t.Errorf("message %d: timestamp %q", i, p.Decoded.Timestamp)
		}
	}
	// NBIRTH: bdSeq (Int64) and Node Control/Rebirth (Boolean false).
	nb := js[0].Decoded.Metrics
	if len(nb) != 2 || *nb[0].Name != "bdSeq" || nb[0].Type != "Int64" || string(nb[0].Value) != `"0"` ||
		*nb[1].Name != "Node Control/Rebirth" || nb[1].Type != "Boolean" || string(nb[1].Value) != "false" {
		t.Fatalf("NBIRTH as decoded by Tahu: %+v", nb)
	}
	// DBIRTH: names, aliases, datatypes, null values (first birth).
	wantBirth := []struct{ name, typ string }{
		{"temp", "Double"}, {"count", "Int64"}, {"big", "UInt64"}, {"on", "Boolean"}, {"name", "String"},
	}
	db := js[1].Decoded.Metrics
	if len(db) != len(wantBirth) {
		t.Fatalf("DBIRTH has %d metrics", len(db))
	}
	alias := map[string]string{}
	for i, w := range wantBirth {
		m := db[i]
		if m.Name == nil || *m.Name != w.name || m.Type != w.typ || m.Alias == "" || m.Timestamp == "" {
			t.Errorf("DBIRTH metric %d: %+v, want %s %s with alias", i, m, w.name, w.typ)
			continue
		}
		alias[m.Alias] = w.name
	}
	// DDATA: alias only; values checked through the reference decoder's
	// typed reading where it can (it needs the datatype, which DATA omits)
	// and through its raw protobuf view.
	dd := js[2]
	wantVals := []string{`21.25`, `"-42"`, `"9223372036854775813"`, `true`, `"ünïcode \"q\""`}
	for i, m := range dd.Raw.Metrics {
		if m.Name != nil || m.Datatype != nil {
			t.Errorf("DDATA metric %d carries name/datatype", i)
		}
		if alias[m.Alias] != wantBirth[i].name {
			t.Errorf("DDATA metric %d: alias %s maps to %q", i, m.Alias, alias[m.Alias])
		}
		var got string
		switch m.Value {
		case "doubleValue":
			got = strconv.FormatFloat(*m.DoubleValue, 'g', -1, 64)
		case "longValue":
			// Int64 is carried as its two's-complement bit pattern.
			u, _ := strconv.ParseUint(m.LongValue, 10, 64)
			if wantBirth[i].typ == "Int64" {
				got = strconv.Quote(strconv.FormatInt(int64(u), 10))
			} else {
				got = strconv.Quote(m.LongValue)
			}
		case "booleanValue":
			got = strconv.FormatBool(*m.BoolValue)
		case "stringValue":
			bs, _ := json.Marshal(*m.StringValue)
			got = string(bs)
		}
		if got != wantVals[i] {
			t.Errorf("DDATA metric %d (%s): %s, want %s", i, m.Value, got, wantVals[i])
		}
		if m.Properties == nil || len(m.Properties.Keys) != 1 || m.Properties.Keys[0] != PropSeq {
			t.Errorf("DDATA metric %d properties %+v", i, m.Properties)
		}
		ts, _ := strconv.ParseInt(dd.Decoded.Metrics[i].Timestamp, 10, 64)
		if ts != batch[i].SourceTime/1e6 {
			t.Errorf("DDATA metric %d timestamp %d", i, ts)
		}
		if dd.Decoded.Metrics[i].IsHistorical != batch[i].Historical {
			t.Errorf("DDATA metric %d isHistorical %v", i, dd.Decoded.Metrics[i].IsHistorical)
		}
	}

	// A rebirth DBIRTH carries the current values with their datatypes,
	// which Tahu's library then reads itself.
	b.Publish(t, "spBv1.0/"+g+"/NCMD/E1", rebirthCmd(t), 1, false)
	b.WaitFor(t, wait, "rebirth DBIRTH", hasN(2, sparkplugb.DBIRTH)(t, g))
	var reborn []byte
	for _, m := range b.Messages() {
		if tp, err := sparkplugb.ParseTopic(m.Topic); err == nil && tp.Group == g && tp.Type == sparkplugb.DBIRTH {
			reborn = m.Payload
		}
	}
	rb := referenceDecode(t, [][]byte{reborn})[0]
	if rb.Decoded.Seq != "1" {
		t.Errorf("rebirth DBIRTH seq %s, want 1", rb.Decoded.Seq)
	}
	for i, m := range rb.Decoded.Metrics {
		if string(m.Value) != wantVals[i] {
			t.Errorf("rebirth DBIRTH %s: Tahu reads %s, want %s", *m.Name, m.Value, wantVals[i])
		}
	}
}
