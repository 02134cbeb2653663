package buffer

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		policy  Policy
		wantErr bool
	}{
		{"", false},
		{DropOldest, false},
		{DropNewest, false},
		{Block, false},
		{"drop-oldest", true},
		{"BLOCK", true},
		{"fifo", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			if err := tt.policy.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%q) = %v, want error %v", tt.policy, err, tt.wantErr)
			}
		})
	}
}

func TestBatchLen(t *testing.T) {
	if n := (Batch{Samples: mk(1, 2, 3)}).Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
}
