package soak

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// The poison: a Sparkplug B edge node whose NBIRTH carries a metric whose
// name is not valid UTF-8 (as a real plant sent one, issue 11). The
// gateway's MQTT source turns it into a tag, and an MQTT sink into a
// topic no broker accepts. A good metric rides in the same message, so the
// rest of a poisoned batch is visible too.
const (
	poisonGroup  = "soak"
	poisonNode   = "poison"
	poisonMetric = "bad\xffname"
	poisonTopic  = "spBv1.0/" + poisonGroup + "/NBIRTH/" + poisonNode
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
	p := sparkplugb.NewPayload(uint64(time.Now().UnixMilli()), 0)
	p.Metrics = []*sparkplugb.Metric{bd, bad, good}
	b, err := sparkplugb.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("poison: %w", err)
	}
	return b, nil
}
