// Package layering holds the test that keeps the package layering of
// DESIGN.md honest: dependencies point down, pure packages import no
// network, storage or libp2p code, and chain and tunnel never import each
// other (tailscale's deps_test does the same for tailscaled).
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/ipsx/ipsx/"

// forbidden lists, per package (and its subpackages), import prefixes it
// must not use directly.
var forbidden = map[string][]string{
	"orderbook": {"net", mod + "matching", mod + "agreement", mod + "chain", mod + "tunnel", mod + "node", mod + "sdk", "github.com/libp2p/"},
	"matching":  {"net", "os", "github.com/dgraph-io/", "github.com/libp2p/", mod + "agreement", mod + "chain", mod + "tunnel", mod + "node"},
	"agreement": {"net", "os", "github.com/dgraph-io/", "github.com/libp2p/", mod + "chain", mod + "tunnel", mod + "node", mod + "matching"},
	"chain":     {mod + "tunnel", mod + "node", mod + "matching", "github.com/libp2p/"},
	"tunnel":    {mod + "chain", mod + "node", mod + "matching", "github.com/libp2p/go-libp2p-pubsub", "github.com/libp2p/go-libp2p-kad-dht"},
	"sdk":       {mod + "node", mod + "chain", mod + "tunnel", "github.com/libp2p/", "github.com/dgraph-io/"},
	"node":      {mod + "cmd", mod + "testnet"},
	"testnet":   {mod + "cmd"},
	"network":   {"net/http", mod + "node", mod + "chain", mod + "tunnel", mod + "matching", mod + "agreement", mod + "sdk", "github.com/libp2p/", "github.com/dgraph-io/"},
	"geo":       {"net/http", mod + "node", mod + "chain", mod + "tunnel", mod + "matching", mod + "agreement", "github.com/libp2p/", "github.com/dgraph-io/"},
	// The VPN maps a TUN's flows onto tunnel flows; which deal carries
	// them is node's business (it implements vpn.Dialer).
	"vpn": {mod + "node", mod + "chain", mod + "matching", mod + "orderbook", mod + "agreement", mod + "sdk", "github.com/libp2p/", "github.com/dgraph-io/"},
}

// sub lists rules for packages below node/, on top of node's: each job's
// package depends on small interfaces and never on node itself (nor on
// the network: the deal driver reaches its peers through a Transport).
var sub = map[string][]string{
	"node/deals": {mod + "node", mod + "tunnel", mod + "chain", "net", "github.com/libp2p/"},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], mod), fields[1:]
		top := strings.SplitN(pkg, "/", 2)[0]
		rules, ok := forbidden[top]
		if !ok {
			continue
		}
		for p, extra := range sub {
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				rules = append(append([]string(nil), rules...), extra...)
			}
		}
		if strings.HasSuffix(pkg, "test") { // test helper packages (orderbooktest, apitest)
			continue
		}
		checked++
		for _, imp := range imports {
			for _, bad := range rules {
				if imp == bad || strings.HasPrefix(imp, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) {
					t.Errorf("%s imports %s: the layering forbids %s", pkg, imp, bad)
				}
			}
		}
	}
	if checked < 6 {
		t.Fatalf("checked only %d packages: is go list seeing the module?", checked)
	}
}
