package sparkplug

import (
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
)

// The tests run against mqtttest's embedded broker, which records every
// message; these helpers decode what it saw.

// spMsg is a recorded Sparkplug message, decoded.
type spMsg struct {
	topic   sparkplugb.Topic
	raw     string
	qos     byte
	retain  bool
	payload *sparkplugb.Payload
}

// sparkplugMsgs decodes the recorded messages of edge node group/edge
// (NCMD and STATE excluded: those are the tests' own).
func sparkplugMsgs(t testing.TB, msgs []mqtttest.Message, group, edge string) []spMsg {
	t.Helper()
	var out []spMsg
	for _, m := range msgs {
		tp, err := sparkplugb.ParseTopic(m.Topic)
		if err != nil || tp.Group != group || tp.EdgeNode != edge || tp.Type == sparkplugb.NCMD || tp.Type == sparkplugb.DCMD {
			continue
		}
		p, err := sparkplugb.Decode(m.Payload)
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		out = append(out, spMsg{topic: tp, raw: m.Topic, qos: m.QoS, retain: m.Retain, payload: p})
	}
	return out
}

func ofType(msgs []spMsg, types ...sparkplugb.MessageType) []spMsg {
	var out []spMsg
	for _, m := range msgs {
		for _, ty := range types {
			if m.topic.Type == ty {
				out = append(out, m)
			}
		}
	}
	return out
}
