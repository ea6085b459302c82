// Package geo looks up where an IP address is (country, region, city and
// autonomous system) in local MaxMind-format .mmdb files such as GeoLite2 or
// DB-IP Lite.
//
// It only reads files it is given: it makes no network calls, never downloads
// or refreshes a database, and applies no policy to private or loopback
// addresses; callers decide what an answer means.
package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrClosed is returned by Lookup after Close.
var ErrClosed = errors.New("geo: database closed")

var (
	errNoPaths     = errors.New("geo: no database paths")
	errInvalidAddr = errors.New("geo: invalid address")
)

// Location is what the databases know about an address. Empty fields are
// unknown.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code, upper case ("US").
	Country string
	// Region is the ISO code of the first subdivision ("CA" for California).
	Region string
	// City is the English city name.
	City string
	// ASN is the autonomous system number.
	ASN uint32
	// Org is the organization that runs the autonomous system.
	Org string
}

// DB answers lookups from one or more .mmdb files. It is safe for
// concurrent use.
type DB struct {
	paths []string

	mu      sync.RWMutex // guards readers: Close unmaps files that lookups read
	readers []*maxminddb.Reader
}

// Open opens the .mmdb files at paths, for example a City file and an ASN
// file. Each file may carry any subset of the fields of Location.
func Open(paths ...string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errNoPaths
	}
	d := &DB{paths: append([]string(nil), paths...)}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			// A *fs.PathError already names the path; keep only its cause so
			// the message names it once.
			if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == p {
				err = pe.Err
			}
			_ = d.Close()
			return nil, fmt.Errorf("geo: open %s: %w", p, err)
		}
		d.readers = append(d.readers, r)
	}
	return d, nil
}

// Paths returns the paths the DB was opened with, in lookup order.
func (d *DB) Paths() []string {
	return append([]string(nil), d.paths...)
}

// Close releases the files. Lookups after Close return ErrClosed. Close is
// safe to call more than once.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for i, r := range d.readers {
		if err := r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("geo: close %s: %w", d.paths[i], err))
		}
	}
	d.readers = nil
	return errors.Join(errs...)
}

// record is the layout GeoLite2 and DB-IP Lite files share.
type record struct {
	Country           isoCode   `maxminddb:"country"`
	RegisteredCountry isoCode   `maxminddb:"registered_country"`
	Subdivisions      []isoCode `maxminddb:"subdivisions"`
	City              struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	ASN uint32 `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
}

type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

// Lookup returns what the files know about ip. Each field comes from the
// first file, in Open order, that has a non-empty value for it. found is
// false when no file has a record for ip. An IPv4-mapped IPv6 address is
// looked up as IPv4.
func (d *DB) Lookup(ip netip.Addr) (loc Location, found bool, err error) {
	if !ip.IsValid() {
		return Location{}, false, errInvalidAddr
	}
	ip = ip.Unmap()

	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.readers == nil {
		return Location{}, false, ErrClosed
	}
	for i, r := range d.readers {
		// An IPv4-only file has no answer for IPv6, which is not an error
		// when another file may have one.
		if ip.Is6() && r.Metadata.IPVersion == 4 {
			continue
		}
		res := r.Lookup(ip)
		if !res.Found() {
			if err := res.Err(); err != nil {
				return Location{}, false, fmt.Errorf("geo: look up %s in %s: %w", ip, d.paths[i], err)
			}
			continue
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return Location{}, false, fmt.Errorf("geo: decode record for %s in %s: %w", ip, d.paths[i], err)
		}
		found = true
		loc.merge(rec)
	}
	return loc, found, nil
}

// merge fills the fields of l that are still empty from rec.
func (l *Location) merge(rec record) {
	country := rec.Country.ISOCode
	if country == "" {
		country = rec.RegisteredCountry.ISOCode
	}
	fill(&l.Country, strings.ToUpper(country))
	if len(rec.Subdivisions) > 0 {
		fill(&l.Region, rec.Subdivisions[0].ISOCode)
	}
	fill(&l.City, rec.City.Names.EN)
	if l.ASN == 0 {
		l.ASN = rec.ASN
	}
	fill(&l.Org, rec.Org)
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}
