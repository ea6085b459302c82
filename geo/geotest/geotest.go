// Package geotest writes small .mmdb files for tests of code that uses
// package geo. It is for tests only: it keeps whole databases in memory and
// makes no attempt to be fast.
package geotest

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/ipsx/ipsx/geo"
)

// Entry maps every address in Prefix to Loc.
type Entry struct {
	Prefix netip.Prefix
	Loc    geo.Location
}

// Write writes a "GeoLite2-City" .mmdb file at path holding entries, with
// records in the GeoLite2 layout and empty fields left out. Where entries
// nest, the more specific prefix wins whatever the order. IPv4 prefixes
// (plain or IPv4-mapped) are reachable by IPv4 lookups; reserved ranges such
// as 192.0.2.0/24 and 2001:db8::/32 are allowed.
func Write(path string, entries ...Entry) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoLite2-City",
		Description:             map[string]string{"en": "geotest"},
		Languages:               []string{"en"},
		IPVersion:               6,
		RecordSize:              28,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("geotest: new tree: %w", err)
	}
	// The writer lets a later insert replace what it covers, so inserting
	// wider prefixes first makes the most specific one win.
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int {
		return cmp.Compare(bits(a.Prefix), bits(b.Prefix))
	})
	for _, e := range sorted {
		p, err := normalize(e.Prefix)
		if err != nil {
			return err
		}
		network := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(network, record(e.Loc)); err != nil {
			return fmt.Errorf("geotest: insert %s: %w", p, err)
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("geotest: %w", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("geotest: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("geotest: %w", err)
	}
	return nil
}

// WriteT writes entries to a file in t.TempDir and returns its path. It
// fails the test on error.
func WriteT(t testing.TB, entries ...Entry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "geotest.mmdb")
	if err := Write(path, entries...); err != nil {
		t.Fatal(err)
	}
	return path
}

// bits is the prefix length in IPv4 terms for IPv4-mapped prefixes, so that
// sorting compares like with like.
func bits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return p.Bits() - 96
	}
	return p.Bits()
}

// normalize turns an IPv4-mapped prefix into plain IPv4, which the writer
// places in the IPv4 subtree that IPv4 lookups reach; it rejects the mapped
// form itself as an alias.
func normalize(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("geotest: invalid prefix %q", p)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("geotest: IPv4-mapped prefix %s is shorter than /96", p)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// record builds a GeoLite2-layout record, leaving out empty fields.
func record(l geo.Location) mmdbtype.Map {
	m := mmdbtype.Map{}
	if l.Country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(l.Country)}
	}
	if l.Region != "" {
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(l.Region)}}
	}
	if l.City != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(l.City)}}
	}
	if l.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(l.ASN)
	}
	if l.Org != "" {
		m["autonomous_system_organization"] = mmdbtype.String(l.Org)
	}
	return m
}
