package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

// TestRecordRefusedIsRejected: records the brokers refuse for good
// (MESSAGE_TOO_LARGE, INVALID_RECORD) come back as rejected samples with
// their cause, not as a failure to retry forever; the next batch goes on.
func TestRecordRefusedIsRejected(t *testing.T) {
	for _, tt := range []struct {
		code  int16
		cause string
	}{{kerr.MessageTooLarge.Code, pipeline.CauseOversize}, {kerr.InvalidRecord.Code, pipeline.CauseRefused}} {
		t.Run(tt.cause, func(t *testing.T) {
			cl := startCluster(t, 1, []string{"refuse"})
			s := connected(t, testConfig(cl.addr(), "refuse", ModeSample))
			batch := sinktest.Batch("refuse", 1, 6, 1)
			kc := cl.kfake()
			kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				return produceError(req.(*kmsg.ProduceRequest), tt.code), nil, true // once
			})
			err := write(t, s, batch[:3])
			var rej *pipeline.RejectedError
			if !errors.As(err, &rej) || len(rej.Rejected) != 3 {
				t.Fatalf("Write = %v; want the 3 samples rejected", err)
			}
			for i, r := range rej.Rejected {
				if r.Index != i || r.Cause != tt.cause {
					t.Fatalf("rejection %d = %+v, want index %d cause %s", i, r, i, tt.cause)
				}
			}
			if err := write(t, s, batch[3:]); err != nil {
				t.Fatalf("next Write: %v", err)
			}
		})
	}
}
