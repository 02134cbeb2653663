package soak

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// The poison: a Sparkplug B edge node whose NBIRTH carries a metric whose
// name is not valid UTF-8 (as a real plant sent one, issue 11) — the
// source escapes such names, or an MQTT sink makes a topic of it that no
// broker accepts — and a metric whose string value is larger than the
// broker's maximum packet size (maxPacket): the broker disconnects the
// sink over it, so the sink must dead-letter it. A good metric rides in
// the same message, so the rest of a poisoned batch is visible too.
const (
	poisonGroup  = "soak"
	poisonNode   = "poison"
	poisonMetric = "bad\xffname"
	poisonTopic  = "spBv1.0/" + poisonGroup + "/NBIRTH/" + poisonNode
	// poisonSamples is how many samples of a poison message may be
	// dead-lettered: the bad name and the oversize value.
	poisonSamples = 2
	// maxPacket is the broker's maximum packet size; the oversize metric
	// is twice as large.
	maxPacket = 64 << 10
)

// poisonPayload is the NBIRTH with one poison and one good metric.
func poisonPayload(n uint64) ([]byte, error) {
	bd := &sparkplugb.Metric{Name: proto.String(sparkplugb.MetricBdSeq), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64))}
	bad := &sparkplugb.Metric{Name: proto.String(poisonMetric), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64))}
	good := &sparkplugb.Metric{Name: proto.String("good"), Datatype: proto.Uint32(uint32(sparkplugb.DataType_Int64))}
	for _, m := range []*sparkplugb.Metric{bd, bad, good} {
		if err := sparkplugb.SetValue(m, model.Int(int64(n&0xff)), sparkplugb.DataType_Int64); err != nil {
			return nil, fmt.Errorf("poison: %w", err)
		}
	}
	big := &sparkplugb.Metric{Name: proto.String("oversize"), Datatype: proto.Uint32(uint32(sparkplugb.DataType_String))}
	if err := sparkplugb.SetValue(big, model.String(strings.Repeat("x", 2*maxPacket)), sparkplugb.DataType_String); err != nil {
		return nil, fmt.Errorf("poison: %w", err)
	}
	p := sparkplugb.NewPayload(uint64(time.Now().UnixMilli()), 0)
	p.Metrics = []*sparkplugb.Metric{bd, bad, big, good}
	b, err := sparkplugb.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("poison: %w", err)
	}
	return b, nil
}
