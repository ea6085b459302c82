package node

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/geo"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Where an IP really is. A provider's node with a geolocation database
// (--geoip) fills an offer's location from the database's answer for its
// location IP and marks a location it cannot confirm unverified; a
// requester's node checks the address its provider's connection comes from
// against its own database once a deal runs, and reports a mismatch on the
// deal and in the provider's reputation.

const (
	keyOfferLoc = "deal/offerloc/" // requester: deal -> the offer's location
	keyGeoCheck = "deal/geo/"      // requester: deal -> its geo check
)

// openGeo opens the configured databases (none: nil).
func openGeo(paths []string) (*geo.DB, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	db, err := geo.Open(paths...)
	if err != nil {
		return nil, fmt.Errorf("node: --geoip: %w", err)
	}
	return db, nil
}

// locationIP is the address an offer's location describes: the egress
// address when one is configured (the address rented out), else the public
// address peers observe.
func (n *Node) locationIP() (netip.Addr, bool) {
	if n.o.egress.IsValid() && !n.o.egress.IsUnspecified() {
		return n.o.egress, true
	}
	if len(n.o.egressPool) > 0 {
		return n.o.egressPool[0], true
	}
	return n.PublicIP()
}

// locate fills in p's location from the database and says whether the
// offer's location is unverified: declared with no database, no known
// public address, an address the database does not know, or fields that
// differ from its answer. With no country given the database must answer.
func (n *Node) locate(p *sdk.OfferParams) (unverified bool, err error) {
	declared := p.Country != ""
	why := ""
	var loc geo.Location
	switch ip, ok := n.locationIP(); {
	case n.geo == nil:
		why = "no geolocation database (start the node with --geoip)"
	case !ok:
		why = "no public address known yet (no peer has reported one)"
	default:
		var found bool
		loc, found, err = n.geo.Lookup(ip)
		if err != nil {
			return false, err
		}
		if !found || loc.Country == "" {
			why = fmt.Sprintf("%s is not in the geolocation database", ip)
		}
	}
	if why != "" {
		if !declared {
			return false, fmt.Errorf("%w: country: none given and none can be looked up: %s", orderbook.ErrOutOfRange, why)
		}
		return true, nil
	}
	if !declared {
		p.Country, p.Region, p.City, p.ASN = loc.Country, loc.Region, loc.City, loc.ASN
		return false, nil
	}
	if !strings.EqualFold(p.Country, loc.Country) {
		return true, nil
	}
	unverified = (p.Region != "" && p.Region != loc.Region) || (p.City != "" && p.City != loc.City) || (p.ASN != 0 && p.ASN != loc.ASN)
	if p.Region == "" {
		p.Region = loc.Region
	}
	if p.City == "" {
		p.City = loc.City
	}
	if p.ASN == 0 {
		p.ASN = loc.ASN
	}
	return unverified, nil
}

// offerLoc is what a requester remembers of the offer a deal came from.
type offerLoc struct {
	Location   orderbook.Location `json:"location"`
	Unverified bool               `json:"unverified,omitempty"`
	// IPType routes proxy usernames with type-… (tunnel.go).
	IPType orderbook.IPType `json:"ipType,omitempty"`
}

// geoCheck checks, once per deal, where the provider of a requester's
// running deal really is: the address of a direct connection to it,
// looked up in the node's database. A relayed connection says nothing
// about the provider's address, so the check waits for a direct one.
func (n *Node) geoCheck(r *deals.Record) {
	d := &r.Deal
	if n.geo == nil || d.Role != agreement.RoleRequester || d.Status() != agreement.StatusActive {
		return
	}
	key := []byte(keyGeoCheck + d.ID.Hex())
	if n.dbHas(key) {
		return
	}
	var ol offerLoc
	if r.Offer != nil {
		ol = offerLoc{Location: r.Offer.Location, Unverified: r.Offer.Unverified}
	} else if err := n.dbGetJSON([]byte(keyOfferLoc+d.ID.Hex()), &ol); err != nil {
		return // not proposed by this node's proposer: nothing claimed to check
	}
	pid, err := n.peerOf(d.Terms.Provider)
	if err != nil {
		return
	}
	ip, ok := n.directAddr(pid)
	if !ok {
		return
	}
	c := sdk.GeoCheck{IP: ip.String(), Claimed: ol.Location.Country, Unverified: ol.Unverified}
	loc, found, err := n.geo.Lookup(ip)
	switch {
	case err != nil:
		n.log.Warn("geo check", "deal", d.ID.Hex(), "err", err)
		return
	case !found || loc.Country == "":
		c.Result = "unknown"
	case loc.Country == ol.Location.Country:
		c.Result, c.Country = "match", loc.Country
	default:
		c.Result, c.Country = "mismatch", loc.Country
	}
	var count func(*sdk.Reputation)
	if c.Result != "unknown" {
		count = func(r *sdk.Reputation) {
			r.GeoChecks++
			if c.Result == "mismatch" {
				r.GeoMismatches++
			}
		}
	}
	b, _ := json.Marshal(c)
	n.rate(d.Terms.Provider, key, b, count)
	if c.Result == "mismatch" {
		n.log.Warn("geo mismatch: the provider is not where its offer says", "deal", d.ID.Hex(),
			"provider", d.Terms.Provider.Hex(), "ip", c.IP, "offer", c.Claimed, "database", c.Country)
	}
	n.events.publish("deal.geo", struct {
		DealID string       `json:"dealId"`
		Geo    sdk.GeoCheck `json:"geo"`
	}{d.ID.Hex(), c})
}

// directAddr is the remote IP of a direct connection to p.
func (n *Node) directAddr(p peer.ID) (netip.Addr, bool) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if c.Stat().Limited || isRelayed(c.RemoteMultiaddr()) {
			continue
		}
		ip, err := manet.ToIP(c.RemoteMultiaddr())
		if err != nil {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// withGeo adds a deal's geo check to its view.
func (n *Node) withGeo(v *sdk.Deal) {
	var c sdk.GeoCheck
	if n.dbGetJSON([]byte(keyGeoCheck+v.ID), &c) == nil {
		v.Geo = &c
	}
}
