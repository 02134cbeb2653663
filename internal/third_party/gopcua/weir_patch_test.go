package opcua

import (
	"testing"

	"github.com/weir-edge/weir/internal/third_party/gopcua/uacp"
)

// A client's UA-TCP limits are its own (weir patch, DefaultDialer): they
// used to be written into uacp.DefaultClientACK, shared by every client.
func TestLimitOptionsNotShared(t *testing.T) {
	before := *uacp.DefaultClientACK
	a, err := NewClient("opc.tcp://127.0.0.1:4840", MaxChunkCount(7), MaxMessageSize(1<<16), ReceiveBufferSize(8192), SendBufferSize(8192))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewClient("opc.tcp://127.0.0.1:4840")
	if err != nil {
		t.Fatal(err)
	}
	if *uacp.DefaultClientACK != before {
		t.Errorf("DefaultClientACK changed: %+v, was %+v", *uacp.DefaultClientACK, before)
	}
	if got := a.cfg.dialer.ClientACK.MaxChunkCount; got != 7 {
		t.Errorf("client a: MaxChunkCount %d, want 7", got)
	}
	if got := b.cfg.dialer.ClientACK.MaxChunkCount; got != before.MaxChunkCount {
		t.Errorf("client b: MaxChunkCount %d, want the default %d", got, before.MaxChunkCount)
	}
}
