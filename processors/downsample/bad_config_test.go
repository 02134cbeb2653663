package downsample

import (
	"testing"

	"github.com/weir-edge/weir/internal/conf/conftest"
)

// TestBadConfigs checks every testdata/*.bad.yaml against the error its
// first line announces ("# want: ...").
func TestBadConfigs(t *testing.T) { conftest.BadConfigs[Config](t) }
