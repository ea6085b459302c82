// The tests live in geo_test because geotest imports geo.
package geo_test

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/ipsx/ipsx/geo"
	"github.com/ipsx/ipsx/geo/geotest"
)

var (
	mountainView = geo.Location{Country: "US", Region: "CA", City: "Mountain View", ASN: 15169, Org: "GOOGLE"}
	berlin       = geo.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 3320, Org: "Deutsche Telekom AG"}
	tokyo        = geo.Location{Country: "JP", Region: "13", City: "Tokyo", ASN: 2497, Org: "Internet Initiative Japan Inc."}
)

func open(t *testing.T, paths ...string) *geo.DB {
	t.Helper()
	d, err := geo.Open(paths...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func lookup(t *testing.T, d *geo.DB, addr string) (geo.Location, bool) {
	t.Helper()
	loc, found, err := d.Lookup(netip.MustParseAddr(addr))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", addr, err)
	}
	return loc, found
}

// writeRaw writes an mmdb with arbitrary records, for layouts geotest does
// not produce.
func writeRaw(t *testing.T, opts mmdbwriter.Options, prefix string, rec mmdbtype.Map) string {
	t.Helper()
	opts.IncludeReservedNetworks = true
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, network, err := net.ParseCIDR(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "raw.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLookup(t *testing.T) {
	d := open(t, geotest.WriteT(t,
		geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: mountainView},
		geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: berlin},
		geotest.Entry{Prefix: netip.MustParsePrefix("::ffff:203.0.113.0/120"), Loc: tokyo},
	))
	tests := []struct {
		addr  string
		want  geo.Location
		found bool
	}{
		{"192.0.2.0", mountainView, true},
		{"192.0.2.77", mountainView, true},
		{"192.0.2.255", mountainView, true},
		{"::ffff:192.0.2.77", mountainView, true}, // IPv4-mapped IPv6 is unmapped
		{"2001:db8::1", berlin, true},
		{"2001:db8:ffff::42", berlin, true},
		{"203.0.113.9", tokyo, true}, // written as an IPv4-mapped prefix
		{"192.0.3.1", geo.Location{}, false},
		{"198.51.100.1", geo.Location{}, false},
		{"2001:db9::1", geo.Location{}, false},
		{"127.0.0.1", geo.Location{}, false},
		{"::1", geo.Location{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			loc, found := lookup(t, d, tt.addr)
			if loc != tt.want || found != tt.found {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tt.addr, loc, found, tt.want, tt.found)
			}
		})
	}
}

func TestLookupZonedAddr(t *testing.T) {
	d := open(t, geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: berlin}))
	loc, found, err := d.Lookup(netip.MustParseAddr("2001:db8::1%eth0"))
	if err != nil || !found || loc != berlin {
		t.Errorf("Lookup = %+v, %v, %v; want %+v, true, nil", loc, found, err, berlin)
	}
}

func TestMostSpecificPrefixWins(t *testing.T) {
	outer := geo.Location{Country: "US", ASN: 64500, Org: "Outer"}
	inner := geo.Location{Country: "DE", City: "Berlin"}
	innermost := geo.Location{Country: "FR", City: "Paris", ASN: 64502}
	// Narrow prefixes first: the result must not depend on the order.
	d := open(t, geotest.WriteT(t,
		geotest.Entry{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Loc: innermost},
		geotest.Entry{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Loc: inner},
		geotest.Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Loc: outer},
	))
	tests := []struct {
		addr string
		want geo.Location
	}{
		{"10.200.0.1", outer},
		{"10.1.200.1", inner},
		{"10.1.2.3", innermost}, // empty Region and Org are not taken from wider prefixes
		{"10.1.3.0", inner},
	}
	for _, tt := range tests {
		if loc, found := lookup(t, d, tt.addr); !found || loc != tt.want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, true", tt.addr, loc, found, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	cities := geotest.WriteT(t,
		geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: geo.Location{Country: "US", Region: "CA", City: "Mountain View"}},
		geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: geo.Location{Country: "DE", City: "Berlin"}},
	)
	asns := geotest.WriteT(t,
		geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/23"), Loc: geo.Location{ASN: 15169, Org: "GOOGLE"}},
		geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: geo.Location{Country: "FR", Region: "IDF", ASN: 3320, Org: "Deutsche Telekom AG"}},
	)
	d := open(t, cities, asns)
	if got := d.Paths(); len(got) != 2 || got[0] != cities || got[1] != asns {
		t.Errorf("Paths() = %v, want [%s %s]", got, cities, asns)
	}
	tests := []struct {
		addr  string
		want  geo.Location
		found bool
	}{
		{"192.0.2.1", mountainView, true},
		// Only the ASN file covers 192.0.3.0/24.
		{"192.0.3.1", geo.Location{ASN: 15169, Org: "GOOGLE"}, true},
		// The first file wins Country; Region comes from the second.
		{"2001:db8::1", geo.Location{Country: "DE", Region: "IDF", City: "Berlin", ASN: 3320, Org: "Deutsche Telekom AG"}, true},
		{"198.51.100.1", geo.Location{}, false},
	}
	for _, tt := range tests {
		if loc, found := lookup(t, d, tt.addr); loc != tt.want || found != tt.found {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tt.addr, loc, found, tt.want, tt.found)
		}
	}
}

func TestRegisteredCountryFallback(t *testing.T) {
	path := writeRaw(t, mmdbwriter.Options{DatabaseType: "GeoLite2-Country"}, "198.51.100.0/24", mmdbtype.Map{
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("NL")},
	})
	d := open(t, path)
	if loc, found := lookup(t, d, "198.51.100.7"); !found || loc != (geo.Location{Country: "NL"}) {
		t.Errorf("Lookup = %+v, %v; want Country NL", loc, found)
	}
}

func TestUnknownLayout(t *testing.T) {
	// A valid mmdb with none of the known fields opens, and its records
	// count as found with nothing filled in.
	path := writeRaw(t, mmdbwriter.Options{DatabaseType: "Example-Custom"}, "198.51.100.0/24", mmdbtype.Map{
		"is_anonymous": mmdbtype.Bool(true),
	})
	d := open(t, path)
	if loc, found := lookup(t, d, "198.51.100.7"); !found || loc != (geo.Location{}) {
		t.Errorf("Lookup = %+v, %v; want empty, true", loc, found)
	}
}

func TestIPv4OnlyFile(t *testing.T) {
	v4 := writeRaw(t, mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", IPVersion: 4}, "198.51.100.0/24", mmdbtype.Map{
		"autonomous_system_number": mmdbtype.Uint32(64496),
	})
	d := open(t, v4, geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: berlin}))
	if loc, found := lookup(t, d, "198.51.100.7"); !found || loc.ASN != 64496 {
		t.Errorf("Lookup(198.51.100.7) = %+v, %v; want ASN 64496", loc, found)
	}
	if loc, found := lookup(t, d, "2001:db8::1"); !found || loc != berlin {
		t.Errorf("Lookup(2001:db8::1) = %+v, %v; want %+v", loc, found, berlin)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: mountainView})
	missing := filepath.Join(dir, "missing.mmdb")
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not an mmdb file\n", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := geo.Open(); err == nil {
		t.Error("Open() succeeded, want error")
	}
	tests := []struct {
		name  string
		paths []string
		bad   string
	}{
		{"missing", []string{missing}, missing},
		{"garbage", []string{garbage}, garbage},
		{"empty", []string{empty}, empty},
		{"good then garbage", []string{good, garbage}, garbage},
		{"directory", []string{dir}, dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := geo.Open(tt.paths...)
			if err == nil {
				_ = d.Close()
				t.Fatal("Open succeeded, want error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("error %q does not name %s", err, tt.bad)
			}
			if strings.Count(err.Error(), tt.bad) > 1 {
				t.Errorf("error %q names %s more than once", err, tt.bad)
			}
		})
	}
	if _, err := geo.Open(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLookupInvalidAddr(t *testing.T) {
	d := open(t, geotest.WriteT(t))
	if _, _, err := d.Lookup(netip.Addr{}); err == nil {
		t.Error("Lookup(zero Addr) succeeded, want error")
	}
}

func TestClose(t *testing.T) {
	d, err := geo.Open(geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: mountainView}))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, _, err := d.Lookup(netip.MustParseAddr("192.0.2.1")); !errors.Is(err, geo.ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	d, err := geo.Open(
		geotest.WriteT(t,
			geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: geo.Location{Country: "US", Region: "CA", City: "Mountain View"}},
			geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: geo.Location{Country: "DE", Region: "BE", City: "Berlin"}},
		),
		geotest.WriteT(t,
			geotest.Entry{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Loc: geo.Location{ASN: 15169, Org: "GOOGLE"}},
			geotest.Entry{Prefix: netip.MustParsePrefix("2001:db8::/32"), Loc: geo.Location{ASN: 3320, Org: "Deutsche Telekom AG"}},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]geo.Location{
		netip.MustParseAddr("192.0.2.1"):          mountainView,
		netip.MustParseAddr("::ffff:192.0.2.200"): mountainView,
		netip.MustParseAddr("2001:db8::7"):        berlin,
		netip.MustParseAddr("198.51.100.1"):       {},
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				for addr, w := range want {
					loc, _, err := d.Lookup(addr)
					if err != nil {
						t.Errorf("Lookup(%s): %v", addr, err)
						return
					}
					if loc != w {
						t.Errorf("Lookup(%s) = %+v, want %+v", addr, loc, w)
						return
					}
				}
			}
		})
	}
	wg.Wait()

	// Close may race with lookups: they see an answer or ErrClosed, never
	// unmapped memory.
	for range 8 {
		wg.Go(func() {
			for range 200 {
				loc, _, err := d.Lookup(netip.MustParseAddr("192.0.2.1"))
				if errors.Is(err, geo.ErrClosed) {
					return
				}
				if err != nil || loc != mountainView {
					t.Errorf("Lookup = %+v, %v", loc, err)
					return
				}
			}
		})
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}
