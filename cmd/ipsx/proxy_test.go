package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/node"
)

// TestProxyCommands: ipsx proxy password shows the password init made and
// --rotate replaces it; credentials are added with a cap (in tokens),
// listed without their passwords, rotated and removed; the default one
// cannot be removed.
func TestProxyCommands(t *testing.T) {
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	c.ok("init", "--datadir", c.datadir, "--scrypt", "light")
	pw := strings.TrimSpace(c.ok("proxy", "password"))
	if want, _ := node.ProxyPassword(c.datadir); pw != want || len(pw) != 32 {
		t.Fatalf("proxy password %q, file has %q", pw, want)
	}
	if again := strings.TrimSpace(c.ok("proxy", "password")); again != pw {
		t.Fatal("showing the password changed it")
	}
	rot := strings.TrimSpace(c.ok("proxy", "password", "--rotate"))
	if rot == pw || len(rot) != 32 {
		t.Fatalf("rotated to %q", rot)
	}
	var cred node.Credential
	if err := json.Unmarshal([]byte(c.ok("--json", "proxy", "credential", "add", "crawler1", "--cap", "2.5tok")), &cred); err != nil {
		t.Fatal(err)
	}
	if cred.Name != "crawler1" || cred.Cap != "2500000000000000000" || len(cred.Password) != 32 {
		t.Fatalf("added %+v", cred)
	}
	list := c.ok("proxy", "credential", "list")
	for _, want := range []string{"crawler1", "2.5 tok", "default", "none"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, cred.Password) || strings.Contains(list, rot) {
		t.Errorf("list shows a password:\n%s", list)
	}
	if p := strings.TrimSpace(c.ok("proxy", "credential", "rotate", "crawler1")); p == cred.Password {
		t.Error("credential rotate kept the password")
	}
	if _, _, err := c.run("proxy", "credential", "remove", "default"); err == nil || !strings.Contains(err.Error(), "rotate it instead") {
		t.Errorf("removing the default: %v", err)
	}
	if _, _, err := c.run("proxy", "credential", "add", "crawler1"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("adding twice: %v", err)
	}
	if _, _, err := c.run("proxy", "credential", "add", "x", "--cap", "-3"); err == nil || !strings.Contains(err.Error(), "--cap") {
		t.Errorf("bad cap: %v", err)
	}
	c.ok("proxy", "credential", "remove", "crawler1")
	if list := c.ok("proxy", "credential", "list"); strings.Contains(list, "crawler1") {
		t.Errorf("removed credential still listed:\n%s", list)
	}
}
