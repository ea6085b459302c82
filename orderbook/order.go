package orderbook

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Kind tells an offer (provider) from a request (requester).
type Kind uint8

const (
	KindOffer   Kind = 1
	KindRequest Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindOffer:
		return "offer"
	case KindRequest:
		return "request"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "offer":
		return KindOffer, nil
	case "request":
		return KindRequest, nil
	}
	return 0, fmt.Errorf("%w: kind %q (want offer or request)", ErrMalformed, s)
}

// IPType is the kind of address on offer. IPAny is valid only in requests.
type IPType uint8

const (
	IPAny         IPType = 0
	IPResidential IPType = 1
	IPMobile      IPType = 2
	IPDatacenter  IPType = 3
)

var ipTypeNames = [...]string{"any", "residential", "mobile", "datacenter"}

func (t IPType) String() string {
	if int(t) < len(ipTypeNames) {
		return ipTypeNames[t]
	}
	return fmt.Sprintf("iptype(%d)", uint8(t))
}

// ParseIPType is the inverse of IPType.String.
func ParseIPType(s string) (IPType, error) {
	for i, n := range ipTypeNames {
		if n == s {
			return IPType(i), nil
		}
	}
	return 0, fmt.Errorf("%w: ipType %q (want residential, mobile, datacenter or any)", ErrMalformed, s)
}

// Protocols is a bit set of what a proxy carries.
type Protocols uint8

const (
	ProtoTCP Protocols = 1 << 0
	ProtoUDP Protocols = 1 << 1

	knownProtocols = ProtoTCP | ProtoUDP
)

// Has reports whether every protocol in q is in p.
func (p Protocols) Has(q Protocols) bool { return p&q == q }

// Names lists the protocols in a fixed order.
func (p Protocols) Names() []string {
	var out []string
	if p&ProtoTCP != 0 {
		out = append(out, "tcp")
	}
	if p&ProtoUDP != 0 {
		out = append(out, "udp")
	}
	return out
}

func (p Protocols) String() string { return strings.Join(p.Names(), ",") }

// ParseProtocols turns names into a set; unknown names are an error.
func ParseProtocols(names []string) (Protocols, error) {
	var p Protocols
	for _, n := range names {
		switch strings.ToLower(n) {
		case "tcp":
			p |= ProtoTCP
		case "udp":
			p |= ProtoUDP
		default:
			return 0, fmt.Errorf("%w: protocol %q (want tcp or udp)", ErrMalformed, n)
		}
	}
	return p, nil
}

// Location narrows where an IP is. Country is an ISO 3166-1 alpha-2 code and
// is the order's gossip shard; the rest is optional (empty, or 0 for ASN).
type Location struct {
	Country string
	Region  string
	City    string
	ASN     uint32
}

// Order is an offer or a request. Fields that belong to one kind only are
// zero in the other; the EIP-712 encoding (and the JSON form) carries only
// the fields of its kind.
//
// Maker and Nonce name an order's series: a later Version of the same series
// supersedes the earlier one (a provider updating its capacity).
type Order struct {
	Kind Kind

	// Domain. Carried in the wire form so that an order signed for another
	// chain is reported as such instead of as a bad signature.
	ChainID           uint64
	VerifyingContract common.Address

	Maker   common.Address
	Nonce   uint64
	Version uint32
	Created uint64 // unix seconds
	Expires uint64 // unix seconds

	Location  Location
	IPType    IPType
	IPs       uint32
	Protocols Protocols

	// Offer: the asking prices. Request: the most the maker pays.
	// Token base units per IP-hour and per GB (10^9 bytes).
	PricePerHour *big.Int
	PricePerGB   *big.Int

	// Offer only: the rental durations accepted, in seconds.
	MinDuration uint32
	MaxDuration uint32
	// Request only: the rental duration wanted, in seconds.
	Duration uint32

	// Offer: the bandwidth offered per IP; request: the least accepted.
	// Mbit/s.
	Bandwidth uint32

	// Offer only: the location was declared by the provider rather than
	// looked up in a geolocation database for its public address.
	Unverified bool

	// Signature is the 65-byte [R || S || V] EIP-712 signature by Maker.
	Signature []byte
}

// Shard is the gossip shard (country code) of the order.
func (o *Order) Shard() string { return o.Location.Country }

// Cancel withdraws an order before it expires. Signed by the order's maker.
type Cancel struct {
	ChainID           uint64
	VerifyingContract common.Address
	Maker             common.Address
	OrderID           common.Hash
	Created           uint64
	Signature         []byte
}

// Heartbeat keeps a maker's offers in one shard alive and carries a digest of
// the maker's live orders there, so a peer that holds a different set knows
// to pull what it misses.
type Heartbeat struct {
	ChainID           uint64
	VerifyingContract common.Address
	Maker             common.Address
	Country           string
	Created           uint64
	Count             uint32
	Digest            common.Hash
	Signature         []byte
}

// Domain is the EIP-712 domain every IPSX signature is made under.
type Domain struct {
	ChainID           uint64
	VerifyingContract common.Address
}

// Cost is what the order could cost its maker at most, in token base units:
// for a request, its IPs for its whole duration at its max hourly price
// (rounded up). Offers cost their maker nothing. The anti-spam rule compares
// it with the maker's free escrow balance.
func (o *Order) Cost() *big.Int {
	if o.Kind != KindRequest || o.PricePerHour == nil {
		return new(big.Int)
	}
	c := new(big.Int).Mul(o.PricePerHour, big.NewInt(int64(o.IPs)))
	c.Mul(c, big.NewInt(int64(o.Duration)))
	c.Add(c, big.NewInt(3599))
	return c.Div(c, big.NewInt(3600))
}

var errNilPrice = errors.New("price missing")
