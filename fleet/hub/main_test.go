package hub_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every hub, its embedded server and its connections are gone after
// Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
