package orderbook

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The EIP-712 type strings. docs/orders.md repeats them; a test keeps the two
// in step.
const (
	DomainType    = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	OfferType     = "Offer(address maker,uint64 nonce,uint32 version,uint64 created,uint64 expires,string country,string region,string city,uint32 asn,uint8 ipType,uint32 ips,uint8 protocols,uint256 pricePerHour,uint256 pricePerGB,uint32 minDuration,uint32 maxDuration,uint32 bandwidth,bool unverified)"
	RequestType   = "Request(address maker,uint64 nonce,uint32 version,uint64 created,uint64 expires,string country,string region,string city,uint32 asn,uint8 ipType,uint32 ips,uint8 protocols,uint32 duration,uint256 maxPricePerHour,uint256 maxPricePerGB,uint32 minBandwidth)"
	CancelType    = "Cancel(address maker,bytes32 orderId,uint64 created)"
	HeartbeatType = "Heartbeat(address maker,string country,uint64 created,uint32 count,bytes32 digest)"

	DomainName    = "IPSX"
	DomainVersion = "1"
)

var (
	domainTypeHash    = crypto.Keccak256Hash([]byte(DomainType))
	offerTypeHash     = crypto.Keccak256Hash([]byte(OfferType))
	requestTypeHash   = crypto.Keccak256Hash([]byte(RequestType))
	cancelTypeHash    = crypto.Keccak256Hash([]byte(CancelType))
	heartbeatTypeHash = crypto.Keccak256Hash([]byte(HeartbeatType))
	domainNameHash    = crypto.Keccak256Hash([]byte(DomainName))
	domainVersionHash = crypto.Keccak256Hash([]byte(DomainVersion))
)

// encoder builds the 32-byte-word encoding of EIP-712's encodeData.
type encoder struct{ buf []byte }

func (e *encoder) word(w []byte) { e.buf = append(e.buf, w...) }

func (e *encoder) hash(h common.Hash) { e.word(h[:]) }

func (e *encoder) uint(v uint64) {
	var w [32]byte
	binary.BigEndian.PutUint64(w[24:], v)
	e.word(w[:])
}

func (e *encoder) big(v *big.Int) {
	var w [32]byte
	if v != nil {
		v.FillBytes(w[:]) // callers check the range first
	}
	e.word(w[:])
}

func (e *encoder) address(a common.Address) {
	var w [32]byte
	copy(w[12:], a[:])
	e.word(w[:])
}

func (e *encoder) boolean(b bool) {
	var v uint64
	if b {
		v = 1
	}
	e.uint(v)
}

func (e *encoder) string(s string) { e.hash(crypto.Keccak256Hash([]byte(s))) }

func (e *encoder) sum() common.Hash { return crypto.Keccak256Hash(e.buf) }

// separators caches domain separators; a network has one or two domains,
// and the cache stops growing at maxSeparators so that orders claiming
// arbitrary domains (which are refused anyway) cannot bloat it.
var (
	separatorsMu sync.RWMutex
	separators   = map[Domain]common.Hash{}
)

const maxSeparators = 16

// Separator is the EIP-712 domain separator.
func (d Domain) Separator() common.Hash {
	separatorsMu.RLock()
	h, ok := separators[d]
	separatorsMu.RUnlock()
	if ok {
		return h
	}
	h = d.separator()
	separatorsMu.Lock()
	if len(separators) < maxSeparators {
		separators[d] = h
	}
	separatorsMu.Unlock()
	return h
}

func (d Domain) separator() common.Hash {
	e := encoder{buf: make([]byte, 0, 5*32)}
	e.hash(domainTypeHash)
	e.hash(domainNameHash)
	e.hash(domainVersionHash)
	e.uint(d.ChainID)
	e.address(d.VerifyingContract)
	return e.sum()
}

// digest is keccak256("\x19\x01" || domainSeparator || structHash).
func (d Domain) digest(structHash common.Hash) common.Hash {
	sep := d.Separator()
	buf := make([]byte, 0, 66)
	buf = append(buf, 0x19, 0x01)
	buf = append(buf, sep[:]...)
	buf = append(buf, structHash[:]...)
	return crypto.Keccak256Hash(buf)
}

// Domain is the domain the order claims to be signed under.
func (o *Order) Domain() Domain {
	return Domain{ChainID: o.ChainID, VerifyingContract: o.VerifyingContract}
}

// StructHash is EIP-712's hashStruct of the order.
func (o *Order) StructHash() common.Hash {
	e := encoder{buf: make([]byte, 0, 18*32)}
	switch o.Kind {
	case KindOffer:
		e.hash(offerTypeHash)
	default:
		e.hash(requestTypeHash)
	}
	e.address(o.Maker)
	e.uint(o.Nonce)
	e.uint(uint64(o.Version))
	e.uint(o.Created)
	e.uint(o.Expires)
	e.string(o.Location.Country)
	e.string(o.Location.Region)
	e.string(o.Location.City)
	e.uint(uint64(o.Location.ASN))
	e.uint(uint64(o.IPType))
	e.uint(uint64(o.IPs))
	e.uint(uint64(o.Protocols))
	if o.Kind == KindOffer {
		e.big(o.PricePerHour)
		e.big(o.PricePerGB)
		e.uint(uint64(o.MinDuration))
		e.uint(uint64(o.MaxDuration))
		e.uint(uint64(o.Bandwidth))
		e.boolean(o.Unverified)
	} else {
		e.uint(uint64(o.Duration))
		e.big(o.PricePerHour)
		e.big(o.PricePerGB)
		e.uint(uint64(o.Bandwidth))
	}
	return e.sum()
}

// ID is the order id: its EIP-712 digest under its domain.
func (o *Order) ID() common.Hash { return o.Domain().digest(o.StructHash()) }

// Sign fills in Maker from key and sets Signature.
func (o *Order) Sign(key *ecdsa.PrivateKey) error {
	o.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(o.ID(), key)
	if err != nil {
		return err
	}
	o.Signature = sig
	return nil
}

// Signer recovers the address that signed the order.
func (o *Order) Signer() (common.Address, error) { return recoverSigner(o.ID(), o.Signature) }

// ID of a cancel: its EIP-712 digest; also its gossip message id.
func (c *Cancel) ID() common.Hash {
	e := encoder{buf: make([]byte, 0, 4*32)}
	e.hash(cancelTypeHash)
	e.address(c.Maker)
	e.hash(c.OrderID)
	e.uint(c.Created)
	return Domain{c.ChainID, c.VerifyingContract}.digest(e.sum())
}

// Sign fills in Maker from key and sets Signature.
func (c *Cancel) Sign(key *ecdsa.PrivateKey) error {
	c.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(c.ID(), key)
	c.Signature = sig
	return err
}

// Signer recovers the address that signed the cancel.
func (c *Cancel) Signer() (common.Address, error) { return recoverSigner(c.ID(), c.Signature) }

// ID of a heartbeat: its EIP-712 digest; also its gossip message id.
func (h *Heartbeat) ID() common.Hash {
	e := encoder{buf: make([]byte, 0, 6*32)}
	e.hash(heartbeatTypeHash)
	e.address(h.Maker)
	e.string(h.Country)
	e.uint(h.Created)
	e.uint(uint64(h.Count))
	e.hash(h.Digest)
	return Domain{h.ChainID, h.VerifyingContract}.digest(e.sum())
}

// Sign fills in Maker from key and sets Signature.
func (h *Heartbeat) Sign(key *ecdsa.PrivateKey) error {
	h.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(h.ID(), key)
	h.Signature = sig
	return err
}

// Signer recovers the address that signed the heartbeat.
func (h *Heartbeat) Signer() (common.Address, error) { return recoverSigner(h.ID(), h.Signature) }

// signDigest signs in the Ethereum convention: V is 27 or 28, as
// eth_signTypedData returns it.
func signDigest(d common.Hash, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := crypto.Sign(d[:], key)
	if err != nil {
		return nil, fmt.Errorf("orderbook: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

var secp256k1HalfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)

// recoverSigner accepts V as 0/1 or 27/28 and only low-S signatures, so one
// order has exactly one valid signature.
func recoverSigner(d common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("%w: signature is %d bytes, want 65", ErrBadSignature, len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return common.Address{}, fmt.Errorf("%w: recovery id %d", ErrBadSignature, sig[64])
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(v, r, s, true) || s.Cmp(secp256k1HalfN) > 0 {
		return common.Address{}, fmt.Errorf("%w: r or s out of range", ErrBadSignature)
	}
	norm := make([]byte, 65)
	copy(norm, sig)
	norm[64] = v
	pub, err := crypto.Ecrecover(d[:], norm)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var a common.Address
	copy(a[:], crypto.Keccak256(pub[1:])[12:])
	return a, nil
}
