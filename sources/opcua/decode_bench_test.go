package opcua

import (
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
)

// BenchmarkDecodePublishResponse measures gopcua's decoding of one publish
// response carrying 10,000 data changes (Double, source and server
// timestamps): the client-side cost before the source sees a sample,
// part of the "receipt delay" weir bench reports.
func BenchmarkDecodePublishResponse(b *testing.B) {
	const items = 10000
	now := time.Now()
	mi := make([]*ua.MonitoredItemNotification, items)
	for i := range mi {
		mi[i] = &ua.MonitoredItemNotification{ClientHandle: uint32(i), Value: &ua.DataValue{
			EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:           ua.MustVariant(float64(i)),
			SourceTimestamp: now, ServerTimestamp: now,
		}}
	}
	res := &ua.PublishResponse{
		ResponseHeader: &ua.ResponseHeader{Timestamp: now, ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)},
		SubscriptionID: 1,
		NotificationMessage: &ua.NotificationMessage{SequenceNumber: 1, PublishTime: now, NotificationData: []*ua.ExtensionObject{
			ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: mi, DiagnosticInfos: []*ua.DiagnosticInfo{}}),
		}},
		AvailableSequenceNumbers: []uint32{},
		Results:                  []ua.StatusCode{},
		DiagnosticInfos:          []*ua.DiagnosticInfo{},
	}
	data, err := ua.Encode(res)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var got ua.PublishResponse
		if _, err := ua.Decode(data, &got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/response")
}
