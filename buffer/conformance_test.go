package buffer_test

import (
	"testing"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/buffertest"
)

func TestMemory(t *testing.T) {
	buffertest.Run(t, func(_ *testing.T, capacity int, p buffer.Policy) buffer.Buffer {
		return buffer.NewMemory(capacity, p)
	})
}
