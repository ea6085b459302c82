package tunnel

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering honest (DESIGN.md): tunnel may import
// agreement, but never chain, node or libp2p.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/ipsx/ipsx/tunnel").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{
			"github.com/ipsx/ipsx/chain", "github.com/ipsx/ipsx/node", "github.com/ipsx/ipsx/testnet",
			"github.com/ipsx/ipsx/cmd", "github.com/libp2p/",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") || strings.HasPrefix(dep, bad) && strings.HasSuffix(bad, "/") {
				t.Errorf("tunnel depends on %s", dep)
			}
		}
	}
}
