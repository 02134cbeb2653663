package cli

import (
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/security"
)

// viewerToken creates a viewer token in dataDir, as weir token create does.
func viewerToken(t testing.TB, dataDir string) string {
	t.Helper()
	store, err := auth.OpenTokens(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := store.Create("test", security.Viewer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
